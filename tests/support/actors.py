"""Actors the tests send to real workers (``dramatiq jobs.worker tests.support.actors``).

Each records what happened to it in a Redis list named by the test, so that a test can read
the attempts' times from outside the worker process.
"""

from __future__ import annotations

import os
import signal
import time

import dramatiq
import redis

from jobs.platform import queues
from jobs.platform.context import current
from jobs.platform.errors import PermanentError, TransientError
from jobs.platform.time_limits import SoftTimeLimitExceeded

FAILURES = {"business": RuntimeError, "permanent": PermanentError, "transient": TransientError}


def _log(key: str, event: str) -> int:
    client = redis.Redis.from_url(current().settings.redis_url)
    return client.rpush(key, f"{event}:{time.time():.3f}")


@dramatiq.actor(queue_name=queues.DEFAULT)
def flaky(key: str, kind: str = "business", failures: int = 1_000) -> int:
    """Fail with an error of ``kind`` on the first ``failures`` attempts, then succeed."""
    attempt = _log(key, "attempt")
    if attempt <= failures:
        raise FAILURES[kind](f"attempt {attempt} failed on purpose")
    return attempt


@dramatiq.actor(queue_name=queues.DEFAULT)
def sleeper(key: str, seconds: float, keep_going_after_soft_limit: bool = False) -> str:
    """Sleep in small steps; at the soft limit, stop or (if told) block in one long sleep."""
    _log(key, "started")
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
    except SoftTimeLimitExceeded:
        _log(key, "soft")
        if not keep_going_after_soft_limit:
            raise
        # One system call: no asynchronous exception can interrupt it, only the hard limit can.
        time.sleep(seconds)
    _log(key, "finished")
    return "finished"


@dramatiq.actor(queue_name=queues.DEFAULT)
def kill_own_worker(key: str) -> None:
    """Kill the worker process running it, as a segfault or the OOM killer would."""
    _log(key, "attempt")
    os.kill(os.getpid(), signal.SIGKILL)


@dramatiq.actor(queue_name=queues.DEFAULT)
def scheduled_probe(fire_time: str | None = None) -> str | None:
    """The job of a test schedule (JOBDECK_SCHEDULE_SCHEDULED_PROBE): returns its nominal time."""
    return fire_time
