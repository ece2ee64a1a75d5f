"""A RedisBroker that writes each message's records in as few round trips as possible.

A send's enqueue record travels in the enqueue's own round trip (``ride_on_enqueue``).

A worker thread ends each message with up to three writes: Dramatiq's result (the Results
middleware), the recorder's SUCCESS/RETRY/FAILURE record, and the broker's ack (or nack, which
dead-letters). Sent together they cost one round trip instead of three. Nothing is buffered in
memory: the writes travel with the ack, so a process killed before the ack loses neither more
nor less than Dramatiq itself would (the message is redelivered and run again, and the recorder
counts the lost attempt).

These calls (the enqueue, the recorder's start, the ack) go on a connection each thread keeps
(``KeptConnections``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis
from dramatiq.errors import ConnectionClosed
from dramatiq.results.backend import wrap_result
from dramatiq.results.backends import RedisBackend
from dramatiq.worker import WorkerThread

from monitoring import keys

#: The attribute of a worker's MessageProxy holding the finish record its ack must carry.
FINISH_ATTRIBUTE = "jobdeck_finish"
#: The attribute holding the result (key, encoded value, ttl) its ack must write.
RESULT_ATTRIBUTE = "jobdeck_result"
#: Set on the MessageProxy once its finish was recorded with a nack (so after_nack need not).
SETTLED_BY_NACK = "jobdeck_settled_by_nack"


def on_worker_thread(broker: dramatiq.Broker) -> bool:
    """Whether this is a worker thread of a RecordingRedisBroker: its writes ride on its acks."""
    return isinstance(broker, RecordingRedisBroker) and isinstance(threading.current_thread(), WorkerThread)


class KeptConnections:
    """Sends commands on a Redis connection each thread keeps, in one round trip.

    redis-py's client checks a connection out of its pool, wraps the call in its retry policy and
    instruments it on every command: about 25 µs of CPU a call, as much as the socket calls
    themselves. For the two calls a worker thread makes per message that doubles their cost.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self.local = threading.local()

    def execute(self, commands: list[tuple]) -> list[Any]:
        """Each command's reply, or the error Redis answered it with; raises on a lost connection."""
        try:
            return self._execute(commands)
        except (redis.ConnectionError, redis.TimeoutError):
            # Most often a kept connection Redis has closed (a restart): one try on a fresh one.
            return self._execute(commands)

    def _execute(self, commands: list[tuple]) -> list[Any]:
        connection = getattr(self.local, "connection", None)
        if connection is None or self.local.pid != os.getpid():
            # Outside the pool, so that it closes when its thread ends (a web server may start a
            # thread per request); a forked child never shares its parent's socket.
            connection = self.local.connection = self.pool.connection_class(**self.pool.connection_kwargs)
            self.local.pid = os.getpid()
        try:
            connection.send_packed_command(connection.pack_commands(commands))
            return [self._read(connection) for _ in commands]
        except BaseException:
            # Replies may be left unread: the connection cannot be trusted any more.
            connection.disconnect()
            raise

    @staticmethod
    def _read(connection) -> Any:
        try:
            return connection.read_response()
        except redis.ResponseError as error:
            return error


class RecordingRedisBroker(RedisBroker):
    """RedisBroker whose enqueues and acknowledgements also carry what middleware record of them.

    A middleware's ``before_enqueue`` may hand ``ride_on_enqueue`` a command: it is sent in the
    enqueue's own round trip, after the enqueue. Acks carry the result and finish record (above).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept_connections = KeptConnections(self.client)
        self._riders = threading.local()

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
        its reply (or error); False, and nothing sent, when no enqueue is under way."""
        commands = getattr(self._riders, "commands", None)
        if commands is None:
            return False
        commands.append((command, on_reply))
        return True

    def do_enqueue(self, queue_name: str, redis_message_id: str, encoded: bytes) -> Any:
        """Dramatiq's enqueue command, and the riders', in one round trip on a kept connection."""
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

    @property
    def consumer_class(self):
        return _RecordingConsumer

    def dispatch_command(self, command: str, queue_name: str, *args) -> tuple:
        """One command of Dramatiq's dispatch script, as ``do_<command>`` runs it, to send with others.

        A plain EVALSHA: if Redis does not have the script (never loaded there, or lost in a
        restart) the command fails with NOSCRIPT and the caller falls back to Dramatiq's own call,
        which loads it.
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


class ResultsOnAckBackend(RedisBackend):
    """Dramatiq's Redis results backend; on a worker thread the result rides on the message's ack.

    Only when the results live in the broker's own Redis database (``on_broker_database``):
    the ack goes out on the broker's connection. Elsewhere, and off worker threads (a result
    stored after a nack, from a callback), it writes directly, as Dramatiq does.
    """

    def __init__(self, *, client: redis.Redis, broker: dramatiq.Broker, on_broker_database: bool) -> None:
        super().__init__(client=client, namespace=keys.RESULTS_NAMESPACE, use_namespace_prefix_keys=True)
        self.broker = broker
        self.on_broker_database = on_broker_database

    def store_result(self, message, result, ttl: int) -> None:
        """Store ``result``: with the message's ack when that comes next, else now."""
        if self.on_broker_database and on_worker_thread(self.broker):
            encoded = self.encoder.encode(wrap_result(result))
            message.__dict__[RESULT_ATTRIBUTE] = (self.build_message_key(message), encoded, ttl)
            return
        super().store_result(message, result, ttl)


class _RecordingConsumer(_RedisConsumer):
    def ack(self, message) -> None:
        if not self._settle(message, "ack"):
            super().ack(message)

    def nack(self, message) -> None:
        if not self._settle(message, "nack"):
            super().nack(message)

    def _settle(self, message, command: str) -> bool:
        """Ack or nack with the result and finish record in one round trip; False if there are none.

        The writes stay on the message until they are sent, so that Dramatiq's retry of an ack
        that lost its connection carries them again.
        """
        result = message.__dict__.get(RESULT_ATTRIBUTE)
        finish = message.__dict__.get(FINISH_ATTRIBUTE)
        if result is None and finish is None:
            return False
        commands = [
            self.broker.dispatch_command(command, self.queue_name, message.options["redis_message_id"])
        ]
        if result is not None:
            # In this order a waiter's BRPOPLPUSH (which keeps the key) never sees a key without its TTL.
            key, encoded, ttl = result
            commands += [("DEL", key), ("LPUSH", key, encoded), ("PEXPIRE", key, ttl)]
        if finish is not None:
            finish = self._finish_command(message, command, finish)
            if finish is not None:
                commands.append(finish[2])
        try:
            replies = self.broker.kept_connections.execute(commands)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise ConnectionClosed(error) from None
        message.__dict__.pop(RESULT_ATTRIBUTE, None)
        message.__dict__.pop(FINISH_ATTRIBUTE, None)
        if finish is not None:
            self._check_finish(message, finish, replies[-1])
            message.__dict__[SETTLED_BY_NACK] = command == "nack"
        if result is not None and isinstance(replies[1], Exception):
            dramatiq.get_logger(__name__).warning("Could not store the result of %s.", message.message_id)
        settled = replies[0]
        if isinstance(settled, redis.exceptions.NoScriptError):
            return False  # Dramatiq's own ack or nack follows, and reloads its script
        if isinstance(settled, Exception):
            raise settled
        self.queued_message_ids.discard(message.message_id)
        return True

    @staticmethod
    def _finish_command(message, command: str, finish) -> tuple | None:
        """(store, data, command) for the finish record; None if it cannot be sent (never blocks an ack)."""
        store, data = finish
        if command == "nack":
            data = {**data, "dead_lettered_at": current_millis()}
        try:
            return store, data, store.record_command("finish", message.message_id, data)
        except Exception:
            dramatiq.get_logger(__name__).warning("Could not record %s.", message.message_id, exc_info=True)
            return None

    @staticmethod
    def _check_finish(message, finish, recorded) -> None:
        store, data, _ = finish
        try:
            store.checked_reply("finish", message.message_id, data, recorded)
        except Exception as error:
            dramatiq.get_logger(__name__).warning(
                "Could not record the finish of %s: %s", message.message_id, error
            )
