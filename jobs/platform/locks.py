"""One-at-a-time locks of jobs that must not overlap (finance runs, reports), in Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dramatiq.rate_limits import ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from jobs.platform.context import current
from jobs.platform.keys import LOCK_PREFIX


@contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """Hold the Redis lock ``name`` for the block; yields False (and holds nothing) if it is taken.

    The lock lives at most the hard time limit, so a worker killed while holding it frees it then.
    """
    context = current()
    limiter = ConcurrentRateLimiter(
        RedisBackend(client=context.broker.client),
        LOCK_PREFIX + name,
        limit=1,
        ttl=int(context.settings.time_limit * 1000),
    )
    with limiter.acquire(raise_on_failure=False) as acquired:
        yield acquired
