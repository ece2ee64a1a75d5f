"""The composition root: ``start()`` builds settings, broker, middleware, database and actors once.

Every entry point (the worker module, the web app, the scheduler, the CLI) calls ``start()``; the
middleware order and the actor modules are decided here and nowhere else. This is the only
module below the faces that knows both the billing domain and monitoring: it hands each what it
needs of the other as a callable.
"""

from __future__ import annotations

import importlib
import os
import socket
from dataclasses import dataclass
from functools import cached_property

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    GroupCallbacks,
    Pipelines,
    ShutdownNotifications,
)
from dramatiq.middleware.prometheus import Prometheus
from dramatiq.rate_limits.backends import RedisBackend as RateLimiterBackend
from dramatiq.results import Results
from dramatiq_abort.backends import RedisBackend as AbortBackend
from sqlalchemy import MetaData

from jobs.billing import models as billing_models
from jobs.billing.notifications import count_unknown_notifications
from jobs.billing.reports.catalogue import SEARCH_TABLE
from jobs.platform import context, keys
from jobs.platform.aborts import RunningTaskAbort
from jobs.platform.broker import build_broker, find_middleware, make_global
from jobs.platform.cache import RedisCache
from jobs.platform.results import ResultsOnAckBackend
from jobs.platform.retries import JobRetries
from jobs.platform.schedules import ScheduleDefinition, ScheduleOptions, schedule_definitions
from jobs.platform.settings import Settings, load_settings
from jobs.platform.time_limits import TimeLimits
from monitoring import access, audit
from monitoring.access import AccessTokens
from monitoring.actions import TaskManager
from monitoring.actors import ActorRecord, describe_actors
from monitoring.alerts import Alerter
from monitoring.audit import AuditLog
from monitoring.queries import TaskMonitor
from monitoring.recorder import TaskRecorder
from monitoring.schedules import ScheduleManager, ScheduleMonitor, ScheduleStore
from monitoring.store import Retention, TaskStore

#: The modules that declare jobdeck's actors; imported after the broker is set up, so every
#: actor binds to it. Actor and queue names are what stored messages and history refer to.
ACTOR_MODULES = (
    "jobs.billing.diagnostics",
    "jobs.billing.finance",
    "jobs.billing.reminders",
    "jobs.billing.reports.actors",
    "jobs.billing.notifications.actors",
    "jobs.billing.exports.actors",
    "jobs.billing.maintenance",
)


@dataclass
class Runtime(context.JobContext):
    """A process's context plus the monitoring read and act models and the alerter."""

    @cached_property
    def store(self) -> TaskStore:
        """The monitoring store the broker's recorder writes to (one per process: one script load)."""
        return find_middleware(self.broker, TaskRecorder).store

    @cached_property
    def monitor(self) -> TaskMonitor:
        """The read model."""
        return TaskMonitor(
            store=self.store, broker=self.broker, heartbeat_interval=self.settings.heartbeat_interval
        )

    @cached_property
    def manager(self) -> TaskManager:
        """The act model."""
        return TaskManager(
            store=self.store, broker=self.broker, monitor=self.monitor, queues=self.settings.queues
        )

    @cached_property
    def tokens(self) -> AccessTokens:
        """The API tokens and their roles."""
        return AccessTokens(self.sessions)

    @cached_property
    def audit(self) -> AuditLog:
        """The audit log of operators' actions."""
        return AuditLog(self.sessions)

    @cached_property
    def cache(self) -> RedisCache:
        """Short-lived cache entries of the web process, on the broker's Redis."""
        return RedisCache(self.broker.client)

    def describe_actors(self) -> list[ActorRecord]:
        """The registered jobs with their effective options (the configured retries and time limits)
        and schedules (JOBDECK_SCHEDULE_<JOB> overrides applied: what the scheduler fires)."""
        settings = self.settings
        return describe_actors(
            self.broker,
            max_retries=settings.max_retries,
            retry_delay=settings.retry_delay,
            soft_time_limit=settings.soft_time_limit,
            time_limit=settings.time_limit,
            schedules={
                definition.actor_name: str(definition.cron) for definition in self.schedule_definitions
            },
        )

    @property
    def rate_limit_prefix(self) -> str:
        """Where the web process's rate limiter keeps its counters in the broker's Redis."""
        return keys.RATE_LIMIT_PREFIX

    @cached_property
    def alerter(self) -> Alerter:
        """The alert rules with the configured sinks; the billing database counts unknown mail,
        the schedule manager records missed runs."""
        return Alerter.from_settings(
            self.settings,
            store=self.store,
            monitor=self.monitor,
            count_unknown_notifications=lambda: count_unknown_notifications(self.sessions),
            detect_missed_schedules=lambda: self.schedule_manager.detect_missed(),
        )

    @cached_property
    def schedule_definitions(self) -> tuple[ScheduleDefinition, ...]:
        """The enabled schedules, from the actors loaded by the time of the first use (a worker's
        or the scheduler's extra modules too) and the settings' overrides."""
        return schedule_definitions(self.broker.actors.values(), self.settings)

    @cached_property
    def schedule_monitor(self) -> ScheduleMonitor:
        """The schedules' read model."""
        return ScheduleMonitor(
            definitions=self.schedule_definitions,
            store=ScheduleStore(self.broker.client),
            task_store=self.store,
            timezone=self.settings.timezone,
        )

    @cached_property
    def schedule_manager(self) -> ScheduleManager:
        """The schedules' act model; this process signs its claims and records as host:pid."""
        return ScheduleManager(
            monitor=self.schedule_monitor,
            store=self.schedule_monitor.store,
            task_store=self.store,
            broker=self.broker,
            process=f"{socket.gethostname()}:{os.getpid()}",
        )


def start(settings: Settings | None = None) -> Runtime:
    """Set the process up once: settings, the global broker, every actor. Returns the runtime."""
    settings = settings or load_settings()
    started: list[Runtime] = []

    def check_scheduler() -> None:
        started[0].alerter.check_scheduler()

    broker = build_broker(settings, lambda broker: middleware(settings, broker, check_scheduler))
    runtime = Runtime(settings=settings, broker=broker)
    started.append(runtime)
    make_global(broker)
    context.install(runtime)
    for module in ACTOR_MODULES:
        importlib.import_module(module)
    return runtime


#: The modules that declare jobdeck's tables, all on jobs.platform.tables.Base.
TABLE_MODULES = (billing_models, access, audit)


def database_metadata() -> MetaData:
    """The metadata of every jobdeck table: what the migrations must create."""
    return TABLE_MODULES[0].Base.metadata


def in_database_metadata(name: str | None, type_: str, parent_names: dict) -> bool:
    """Whether Alembic compares this object: not the full-text search objects migrations add in SQL."""
    return not (name or "").startswith(SEARCH_TABLE)


def task_store(settings: Settings, broker: RedisBroker) -> TaskStore:
    """The monitoring store on the broker's Redis, with the configured retention."""
    retention = Retention(success=settings.success_retention, failure=settings.failure_retention)
    return TaskStore(
        broker.client,
        retention=retention,
        poison_cap=settings.poison_cap,
        broker_namespace=broker.namespace,
        redelivery_timeout=settings.redelivery_timeout,
    )


def middleware(settings: Settings, broker: RedisBroker, check_scheduler=None) -> list[dramatiq.Middleware]:
    """jobdeck's middleware, in order."""
    # Waiting for a result is a BLPOP as long as the caller's timeout; redis-py's default 5 s
    # socket timeout would cut it short.
    results_client = redis.Redis.from_url(settings.results_redis_url, socket_timeout=None)
    return [
        *([Prometheus()] if settings.worker_prometheus else []),
        # Early, so that its after hook (which forgets the current message) runs late: the
        # pipeline, retry and recorder hooks all need to know which message is being processed.
        CurrentMessage(),
        # First in line: its before hook can refuse a revoked task before anything else runs,
        # and its after hooks run last, when the retry decision is known.
        TaskRecorder(
            store=task_store(settings, broker),
            display_limit=settings.display_limit,
            heartbeat_interval=settings.heartbeat_interval,
            scheduler_check=check_scheduler,
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
        # Declares periodiq's ``periodic`` option (and the window) and refuses periodiq's runner;
        # periodiq's own middleware, which drops late ticks, is left out (jobs.platform.schedules).
        ScheduleOptions(),
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
