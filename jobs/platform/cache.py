"""The web process's cache entries in Redis: remembering a costly read briefly, and removing them.

Keys are found with ``SCAN`` (never ``KEYS``, which blocks Redis for as long as it walks the whole
key space) under :data:`jobs.platform.keys.CACHE_PREFIX`, and removed with ``UNLINK`` (the memory is
freed in a background thread) in pipelined batches.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis

from jobs.platform import keys
from jobs.platform.keys import CACHE_PREFIX

#: Keys SCAN examines per call (a hint to Redis), and keys removed per round trip.
DEFAULT_SCAN_COUNT = 1000
DEFAULT_BATCH_SIZE = 1000


def delete_cache_entries(
    client: redis.Redis,
    pattern: str = "*",
    *,
    scan_count: int = DEFAULT_SCAN_COUNT,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Delete the cache entries whose name (after CACHE_PREFIX) matches the glob ``pattern``.

    Returns how many keys were removed (keys that vanished meanwhile are not counted). Costs one
    round trip per SCAN page plus one per ``batch_size`` keys removed.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"pattern must be a non-empty glob such as '*' or 'stats:*', got {pattern!r}")
    # The prefix is literal text before the pattern, so no pattern can match a key outside it.
    match = CACHE_PREFIX + pattern
    deleted = 0
    batch: list[bytes | str] = []
    for key in client.scan_iter(match=match, count=scan_count):
        batch.append(key)
        if len(batch) >= batch_size:
            deleted += _unlink(client, batch)
            batch = []
    if batch:
        deleted += _unlink(client, batch)
    return deleted


def _unlink(client: redis.Redis, keys: list[bytes | str]) -> int:
    pipeline = client.pipeline(transaction=False)
    # A few hundred keys per UNLINK keeps each command short for the server's single thread.
    for start in range(0, len(keys), 250):
        pipeline.unlink(*keys[start : start + 250])
    return sum(pipeline.execute())


class RedisCache:
    """Values worth a short wait, kept as JSON under CACHE_PREFIX for a few seconds.

    Parameters:
      client(redis.Redis): the Redis the entries live in (the broker's).
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def remember(self, name: str, ttl: float, compute: Callable[[], Any]) -> Any:
        """The entry ``name`` if it is there, else ``compute()`` stored for ``ttl`` seconds.

        One round trip on a hit, two on a miss. Concurrent misses each compute: the value is
        a read, so the last write wins with an equal value.
        """
        key = keys.cache(name)
        cached = self.client.get(key)
        if cached is not None:
            return json.loads(cached)
        value = compute()
        if ttl > 0:
            self.client.set(key, json.dumps(value, separators=(",", ":")), px=max(1, int(ttl * 1000)))
        return value
