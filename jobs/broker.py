"""Builds the one Redis broker every jobdeck process (web, worker, scheduler, CLI) uses."""

from __future__ import annotations

from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    GroupCallbacks,
    MiddlewareError,
    Pipelines,
    ShutdownNotifications,
)
from dramatiq.middleware.prometheus import Prometheus
from dramatiq.rate_limits.backends import RedisBackend as RateLimiterBackend
from dramatiq.results import ResultBackend, Results
from dramatiq_abort import Abortable
from dramatiq_abort.backends import RedisBackend as AbortBackend
from periodiq import PeriodiqMiddleware

from jobs.errors import ServiceUnavailable
from jobs.retries import JobRetries
from jobs.settings import Settings
from jobs.time_limits import TimeLimits
from monitoring.acks import RecordingRedisBroker


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


class RunningTaskAbort(Abortable):
    """dramatiq-abort's Abortable for running tasks only.

    Abortable polls Redis before every message for a cancellation; the monitoring recorder's
    start call already refuses revoked tasks in the same round trip that records STARTED, so
    that poll is skipped and only the abort of a running task is left to dramatiq-abort.
    """

    def before_process_message(self, broker, message):
        """Watch the message for an abort request while it runs."""
        if self.is_abortable(broker.get_actor(message.actor_name), message):
            self.manager.add_abortable(message.message_id)


def build_broker(settings: Settings) -> RedisBroker:
    """A RedisBroker with jobdeck's queues and middleware, not yet made the global broker."""
    broker = JobdeckBroker(
        url=settings.redis_url,
        heartbeat_timeout=int(settings.redelivery_timeout * 1000),
        maintenance_chance=settings.maintenance_chance,
    )
    # RedisBroker starts with Dramatiq's default middleware; jobdeck replaces the whole list so
    # that the retry and time-limit policies are its own and the order is explicit.
    broker.middleware.clear()
    for middleware in _middleware(settings, broker):
        broker.add_middleware(middleware)
    for queue in settings.queues:
        broker.declare_queue(queue)
    return broker


def task_store(settings: Settings, client: redis.Redis):
    """The monitoring store on the broker's Redis, with the configured retention."""
    from monitoring.store import Retention, TaskStore

    retention = Retention(success=settings.success_retention, failure=settings.failure_retention)
    return TaskStore(client, retention=retention, poison_cap=settings.poison_cap)


def _middleware(settings: Settings, broker: RedisBroker) -> list[dramatiq.Middleware]:
    from monitoring.acks import ResultsOnAckBackend
    from monitoring.middleware import TaskRecorder

    # Waiting for a result is a BLPOP as long as the caller's timeout; redis-py's default 5 s
    # socket timeout would cut it short.
    results_client = redis.Redis.from_url(settings.results_redis_url, socket_timeout=None)
    return [
        Prometheus(),
        # Early, so that its after hook (which forgets the current message) runs late: the
        # pipeline, retry and recorder hooks all need to know which message is being processed.
        CurrentMessage(),
        # First in line: its before hook can refuse a revoked task before anything else runs,
        # and its after hooks run last, when the retry decision is known.
        TaskRecorder(
            store=task_store(settings, broker.client),
            display_limit=settings.display_limit,
            heartbeat_interval=settings.heartbeat_interval,
        ),
        AgeLimit(),
        TimeLimits(
            soft_time_limit=int(settings.soft_time_limit * 1000),
            time_limit=int(settings.time_limit * 1000),
        ),
        ShutdownNotifications(),
        Callbacks(),
        GroupCallbacks(RateLimiterBackend(client=broker.client)),
        Pipelines(),
        RunningTaskAbort(backend=AbortBackend(client=broker.client)),
        PeriodiqMiddleware(),
        Results(
            backend=ResultsOnAckBackend(
                client=results_client,
                broker=broker,
                on_broker_database=settings.results_redis_url == settings.redis_url,
            ),
            store_results=True,
            result_ttl=int(settings.result_ttl * 1000),
        ),
        JobRetries(
            max_retries=settings.max_retries,
            retry_delay=int(settings.retry_delay * 1000),
            transient_window=int(settings.transient_retry_window * 1000),
        ),
    ]


def setup_broker(settings: Settings) -> RedisBroker:
    """Build the broker and make it Dramatiq's global broker.

    Actors bind to the global broker when their module is imported; actors imported under an
    earlier broker (a test that starts a second runtime) are moved to the new one.
    """
    broker = build_broker(settings)
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


def recorder_store(broker: dramatiq.Broker):
    """The monitoring store the broker's TaskRecorder writes to (one per process: one script load)."""
    from monitoring.middleware import TaskRecorder

    for middleware in broker.middleware:
        if isinstance(middleware, TaskRecorder):
            return middleware.store
    raise LookupError("the broker has no TaskRecorder middleware")


def results_backend(broker: dramatiq.Broker) -> ResultBackend:
    """The results backend the broker's Results middleware writes to."""
    for middleware in broker.middleware:
        if isinstance(middleware, Results):
            return middleware.backend
    raise LookupError("the broker has no Results middleware")
