"""The process-wide context every entry point builds once: settings, broker, database."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobs.settings import Settings, load_settings


@dataclass
class Runtime:
    """What a jobdeck process shares between its jobs: settings, the broker, the database engine."""

    settings: Settings
    broker: RedisBroker

    @cached_property
    def engine(self) -> Engine:
        from jobs.database import make_engine

        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        from jobs.database import make_session_factory

        return make_session_factory(self.engine)

    @cached_property
    def store(self):
        """The monitoring store (monitoring.store.TaskStore) the broker's recorder writes to."""
        from jobs.broker import recorder_store

        return recorder_store(self.broker)

    @cached_property
    def monitor(self):
        """The read model (monitoring.monitor.TaskMonitor)."""
        from monitoring.monitor import TaskMonitor

        return TaskMonitor(
            store=self.store, broker=self.broker, heartbeat_interval=self.settings.heartbeat_interval
        )

    @cached_property
    def manager(self):
        """The act model (monitoring.manager.TaskManager)."""
        from monitoring.manager import TaskManager

        return TaskManager(store=self.store, broker=self.broker, queues=self.settings.queues)


_current: Runtime | None = None


def start(settings: Settings | None = None) -> Runtime:
    """Set the process up once: settings, the global broker, every actor. Returns the runtime."""
    global _current
    from jobs.broker import setup_broker
    from jobs.registry import load_actors

    settings = settings or load_settings()
    broker = setup_broker(settings)
    _current = Runtime(settings=settings, broker=broker)
    load_actors()
    return _current


def current() -> Runtime:
    """The runtime of this process; starts one from the environment if none was started."""
    return _current or start()
