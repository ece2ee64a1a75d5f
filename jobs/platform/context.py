"""What a jobdeck process's jobs share, and the one accessor actors read it through.

``jobs.runtime.start()`` builds the context once per process (the web, worker, scheduler and CLI
entry points call it) and installs it here; an actor calls :func:`current` for its settings,
database sessions and broker. Nothing builds a context behind a caller's back: reading it before
``start()`` raises NotStarted.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jobs.platform.database import make_engine, make_session_factory
from jobs.platform.errors import NotStarted
from jobs.platform.mail import RateLimiter
from jobs.platform.settings import Settings


@dataclass
class JobContext:
    """Settings, the broker, the database engine and the mail rate limiters of one process."""

    settings: Settings
    broker: RedisBroker
    _rate_limiters: dict[float, RateLimiter] = field(default_factory=dict, init=False, repr=False)
    _rate_limiters_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    def rate_limiter(self, rate: float) -> RateLimiter:
        """The process's one limiter for ``rate``: every job thread of a worker process shares it."""
        with self._rate_limiters_lock:
            if rate not in self._rate_limiters:
                self._rate_limiters[rate] = RateLimiter(rate)
            return self._rate_limiters[rate]


_current: JobContext | None = None


def install(context: JobContext) -> None:
    """Make ``context`` this process's (jobs.runtime.start calls it)."""
    global _current
    _current = context


def current() -> JobContext:
    """This process's context; NotStarted if jobs.runtime.start() has not run."""
    if _current is None:
        raise NotStarted("jobdeck is not started in this process: call jobs.runtime.start() first")
    return _current
