"""The Redis broker every jobdeck process (web, worker, scheduler, CLI) uses.

``RecordingRedisBroker`` lets middleware send their writes in the round trips Dramatiq makes
anyway. A send's record travels in the enqueue's own round trip (``ride_on_enqueue``). A worker
thread ends each message with up to three writes: Dramatiq's result, the recorder's finish record
and the broker's ack (or nack, which dead-letters); ``ride_on_ack`` sends them together, one round
trip instead of three. Nothing is buffered in memory: the writes travel with the ack, so a process
killed before the ack loses neither more nor less than Dramatiq itself would (the message is
redelivered and run again).

These calls (the enqueue, the recorder's start, the ack) go on a connection each thread keeps
(``jobs.platform.connections``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Protocol

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import MiddlewareError
from dramatiq.worker import WorkerThread

from jobs.platform import keys
from jobs.platform.connections import KeptConnections
from jobs.platform.errors import ServiceUnavailable
from jobs.platform.settings import Settings

#: The attribute of a worker's MessageProxy holding the writes its ack or nack must carry.
RIDERS_ATTRIBUTE = "jobdeck_ack_riders"
#: Set on a MessageProxy whose worker did not run it: its "ack" puts it back on its queue.
HAND_BACK_ATTRIBUTE = "jobdeck_hand_back"

logger = dramatiq.get_logger(__name__)


class AckOffer:
    """A message's ack, offered to its riders: one may do it in its last command, in place of the
    broker's own EVALSHA of Dramatiq's dispatch script (a script call fewer per message).

    ``arguments`` are what that command needs to ack as Dramatiq's dispatch script does: the
    worker's acks key, the queue's messages key, the heartbeats key, the worker id and the
    message id.
    """

    def __init__(self, arguments: tuple[str, ...]) -> None:
        self.arguments = arguments
        self.taken = False

    def take(self) -> tuple[str, ...]:
        """Carry the ack: the rider's last command must do exactly what Dramatiq's ack does, last,
        and answer an error if it did not (the broker then acks the usual way)."""
        self.taken = True
        return self.arguments


class AckRider(Protocol):
    """Writes that travel with a message's ack or nack (``settle`` is "ack" or "nack")."""

    def commands(self, settle: str, offer: AckOffer | None) -> list[tuple]:
        """The commands to send before the ack or nack; raising skips them, never the ack.
        ``offer`` is the ack, when a rider may carry it (see AckOffer)."""

    def replied(self, settle: str, replies: list[Any]) -> None:
        """Called with the commands' replies (or the errors Redis answered them with)."""


def on_worker_thread(broker: dramatiq.Broker) -> bool:
    """Whether this is a worker thread of a RecordingRedisBroker with kept connections: its
    writes ride on its acks."""
    return (
        isinstance(broker, RecordingRedisBroker)
        and broker.kept_connections is not None
        and isinstance(threading.current_thread(), WorkerThread)
    )


def hand_back_on_ack(message: Any) -> None:
    """Have the worker's ack of ``message`` (skipped, not run) put it back on its queue instead."""
    message.__dict__[HAND_BACK_ATTRIBUTE] = True


def hand_back_now(broker: RedisBroker, message: Any) -> None:
    """Put a message this worker process holds back on its queue now (a worker that is stopping)."""
    broker.do_requeue(message.queue_name, message.options["redis_message_id"])


def ride_on_ack(message: Any, rider: AckRider) -> None:
    """Have the worker's next ack or nack of ``message`` (a MessageProxy) carry ``rider``'s writes."""
    message.__dict__.setdefault(RIDERS_ATTRIBUTE, []).append(rider)


class RecordingRedisBroker(RedisBroker):
    """RedisBroker whose enqueues and acknowledgements also carry what middleware record of them.

    A middleware's ``before_enqueue`` may hand ``ride_on_enqueue`` a command: it is sent in the
    enqueue's own round trip, after the enqueue. Acks carry what ``ride_on_ack`` hands them.
    With a client whose connections cannot be kept (``KeptConnections.for_client``: Sentinel, a
    cluster) nothing rides: the broker makes Dramatiq's own calls, the middleware their own.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept_connections = KeptConnections.for_client(self.client)
        self._riders = threading.local()

    def load_scripts(self) -> None:
        """Load Dramatiq's Lua scripts now rather than on a first NOSCRIPT (the scheduler does,
        before its first tick). One round trip per script."""
        for script in self.scripts.values():
            self.client.script_load(script.script)

    def enqueue(self, message: dramatiq.Message, *, delay: int | None = None) -> dramatiq.Message:
        """Dramatiq's enqueue, with the commands middleware add by ``ride_on_enqueue``."""
        outer = getattr(self._riders, "commands", None)
        self._riders.commands = []
        try:
            return super().enqueue(message, delay=delay)
        finally:
            self._riders.commands = outer

    def ride_on_enqueue(self, command: tuple, on_reply: Callable[[Any], None]) -> bool:
        """Send ``command`` with the enqueue under way on this thread, then call ``on_reply`` with
        its reply (or error); False, and nothing sent, when no enqueue is under way or nothing
        can ride (no kept connections)."""
        commands = getattr(self._riders, "commands", None)
        if commands is None or self.kept_connections is None:
            return False
        commands.append((command, on_reply))
        return True

    def do_enqueue(self, queue_name: str, redis_message_id: str, encoded: bytes) -> Any:
        """Dramatiq's enqueue command, and the riders', in one round trip on a kept connection."""
        if self.kept_connections is None:
            return self._dispatch("enqueue")(queue_name, redis_message_id, encoded)
        riders = getattr(self._riders, "commands", None) or []
        self._riders.commands = None
        enqueue = self.dispatch_command("enqueue", queue_name, redis_message_id, encoded)
        replies = self.kept_connections.execute([enqueue, *(command for command, _ in riders)])
        for (_, on_reply), reply in zip(riders, replies[1:], strict=True):
            on_reply(reply)
        if isinstance(replies[0], redis.exceptions.NoScriptError):
            # Redis lost Dramatiq's script (a restart): its own call loads it again.
            return self._dispatch("enqueue")(queue_name, redis_message_id, encoded)
        if isinstance(replies[0], Exception):
            raise replies[0]
        return replies[0]

    def do_fetch(self, queue_name: str, prefetch: int) -> list:
        """Dramatiq's fetch, on the consumer thread's kept connection."""
        if self.kept_connections is None:
            return self._dispatch("fetch")(queue_name, prefetch)
        (reply,) = self.kept_connections.execute([self.dispatch_command("fetch", queue_name, prefetch)])
        if isinstance(reply, redis.exceptions.NoScriptError):
            return self._dispatch("fetch")(queue_name, prefetch)  # which loads the script again
        if isinstance(reply, Exception):
            raise reply
        return reply

    @property
    def consumer_class(self):
        return _RecordingConsumer

    def dispatch_command(self, command: str, queue_name: str, *args) -> tuple:
        """One command of Dramatiq's dispatch script, as ``do_<command>`` runs it, to send with others.

        A plain EVALSHA: if Redis does not have the script (never loaded there, or lost in a
        restart) the command fails with NOSCRIPT and the caller falls back to Dramatiq's own call,
        which loads it. The arguments follow dramatiq/brokers/redis/dispatch.lua's header; a test
        (tests/jobs/platform/test_dramatiq_internals.py) fails if Dramatiq changes them.
        """
        return (
            "EVALSHA",
            self.scripts["dispatch"].sha,
            1,
            self.namespace,
            command,
            current_millis(),
            queue_name,
            self.broker_id,
            self.heartbeat_timeout,
            self.dead_message_ttl,
            self._should_do_maintenance(command),
            self._max_unpack_size(),
            *args,
        )


class _RecordingConsumer(_RedisConsumer):
    def ack(self, message) -> None:
        if message.__dict__.pop(HAND_BACK_ATTRIBUTE, False):
            self._hand_back(message)
        elif not self._settle(message, "ack"):
            super().ack(message)

    def nack(self, message) -> None:
        if not self._settle(message, "nack"):
            super().nack(message)

    def _hand_back(self, message) -> None:
        """Put a message its worker did not run back on its queue (it keeps its id and body)."""
        try:
            self.broker.do_requeue(self.queue_name, message.options["redis_message_id"])
        except redis.ConnectionError as error:
            raise ConnectionClosed(error) from None
        finally:
            self.queued_message_ids.discard(message.message_id)

    def _settle(self, message, settle: str) -> bool:
        """The riders' writes, then the ack or nack, in one round trip; False if there are none.

        The writes go first: if the connection is cut between them, the message is redelivered
        and its record already says how it ended; if a write is refused while the ack lands,
        upkeep resolves the task (monitoring/upkeep.py). A rider may carry the ack itself
        (AckOffer: the finish record does, in the same script call); if Redis answers its command
        with an error, Dramatiq's own ack follows. The riders stay on the message until
        they are sent, so that Dramatiq's retry of an ack that lost its connection carries them
        again. Whatever Redis answers, the message's prefetch slot is released, as Dramatiq does.
        """
        riders = message.__dict__.get(RIDERS_ATTRIBUTE)
        if not riders:
            return False
        offer = self._ack_offer(message) if settle == "ack" else None
        commands, sent = self._rider_commands(message, riders, settle, offer)
        carried = offer is not None and offer.taken
        if not carried:
            commands.append(
                self.broker.dispatch_command(settle, self.queue_name, message.options["redis_message_id"])
            )
        try:
            replies = self.broker.kept_connections.execute(commands)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise ConnectionClosed(error) from None
        del message.__dict__[RIDERS_ATTRIBUTE]
        try:
            for rider, start, count in sent:
                try:
                    rider.replied(settle, replies[start : start + count])
                except Exception:
                    logger.warning("A write of %s failed.", message.message_id, exc_info=True)
            if isinstance(replies[-1], redis.exceptions.NoScriptError) or (
                carried and isinstance(replies[-1], Exception)
            ):
                return False  # Dramatiq's own ack or nack follows (and reloads its script)
            if isinstance(replies[-1], Exception):
                raise replies[-1]
        finally:
            self.queued_message_ids.discard(message.message_id)
        return True

    def _ack_offer(self, message) -> AckOffer:
        """The ack for a rider to carry. Dramatiq's own ack never runs its queue maintenance
        (``MAINTENANCE_COMMAND_BLACKLIST``), so a carried ack leaves nothing undone."""
        return AckOffer((*self._ack_keys, message.options["redis_message_id"]))

    @functools.cached_property
    def _ack_keys(self) -> tuple[str, str, str, str]:
        """The keys and worker id every ack of this consumer uses (its queue and worker are fixed)."""
        broker = self.broker
        namespace = broker.namespace
        return (
            keys.broker_acks(namespace, broker.broker_id, self.queue_name),
            keys.broker_messages(namespace, self.queue_name),
            keys.broker_heartbeats(namespace),
            broker.broker_id,
        )

    @staticmethod
    def _rider_commands(
        message, riders: list[AckRider], settle: str, offer: AckOffer | None
    ) -> tuple[list[tuple], list]:
        """Every rider's commands, and where each rider's replies will be; the rider that carries
        the ack goes last, as the ack would. A rider that cannot prepare its writes is left out (it
        never blocks the ack)."""
        commands: list[tuple] = []
        sent = []
        carrier = None
        for rider in riders:
            offered = offer if offer is not None and not offer.taken else None
            try:
                rider_commands = rider.commands(settle, offered)
            except Exception:
                logger.warning("Could not prepare the writes of %s.", message.message_id, exc_info=True)
                if offered is not None:
                    offered.taken = False
                continue
            if offered is not None and offered.taken:
                carrier = (rider, rider_commands)
            else:
                sent.append((rider, len(commands), len(rider_commands)))
                commands += rider_commands
        if carrier is not None:
            rider, rider_commands = carrier
            sent.append((rider, len(commands), len(rider_commands)))
            commands += rider_commands
        return commands, sent


class JobdeckBroker(RecordingRedisBroker):
    """The RecordingRedisBroker, calling each hook only on the middleware that implement it.

    Dramatiq calls every hook on every middleware; with a dozen middleware most of the calls per
    message land on Middleware's empty defaults. The list of implementers is computed once per
    hook and recomputed whenever the middleware list changes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._implementers: dict[str, tuple[list[dramatiq.Middleware], list[dramatiq.Middleware]]] = {}
        super().__init__(*args, **kwargs)

    def _hooked(self, hook: str) -> list[dramatiq.Middleware]:
        cached = self._implementers.get(hook)
        if cached is None or cached[0] != self.middleware:
            default = getattr(dramatiq.Middleware, hook)
            implementers = [
                middleware
                for middleware in self.middleware
                if getattr(getattr(middleware, hook), "__func__", None) is not default
            ]
            cached = self._implementers[hook] = (list(self.middleware), implementers)
        return cached[1]

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        hook = "before_" + signal
        for middleware in self._hooked(hook):
            try:
                getattr(middleware, hook)(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", hook, middleware, exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        hook = "after_" + signal
        for middleware in reversed(self._hooked(hook)):
            try:
                getattr(middleware, hook)(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", hook, middleware, exc_info=True)


def build_broker(
    settings: Settings, middleware: Callable[[RedisBroker], list[dramatiq.Middleware]]
) -> RedisBroker:
    """A JobdeckBroker with jobdeck's queues and ``middleware(broker)``, not yet the global broker."""
    broker = JobdeckBroker(
        url=settings.redis_url,
        heartbeat_timeout=int(settings.redelivery_timeout * 1000),
        maintenance_chance=settings.maintenance_chance,
    )
    # RedisBroker starts with Dramatiq's default middleware; jobdeck replaces the whole list so
    # that the retry and time-limit policies are its own and the order is explicit.
    broker.middleware.clear()
    for each in middleware(broker):
        broker.add_middleware(each)
    for queue in settings.queues:
        broker.declare_queue(queue)
    return broker


def make_global(broker: RedisBroker) -> RedisBroker:
    """Make ``broker`` Dramatiq's global broker.

    Actors bind to the global broker when their module is imported; actors imported under an
    earlier broker (a test that starts a second runtime) are moved to the new one.
    """
    previous = dramatiq.broker.global_broker
    dramatiq.set_broker(broker)
    if previous is not None and previous is not broker:
        for actor in list(previous.actors.values()):
            actor.broker = broker
            broker.declare_actor(actor)
    return broker


def check_redis(broker: RedisBroker) -> None:
    """Raise ServiceUnavailable with one clear line when the broker's Redis does not answer."""
    try:
        broker.client.ping()
    except redis.RedisError as error:
        raise ServiceUnavailable(f"Redis cannot be reached: {error}") from None


def find_middleware(broker: dramatiq.Broker, kind: type) -> Any:
    """The broker's middleware of class ``kind``; LookupError if it has none."""
    for middleware in broker.middleware:
        if isinstance(middleware, kind):
            return middleware
    raise LookupError(f"the broker has no {kind.__name__} middleware")
