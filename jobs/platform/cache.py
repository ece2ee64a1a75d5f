"""Removing the web process's cache entries from Redis, and only those.

Keys are found with ``SCAN`` (never ``KEYS``, which blocks Redis for as long as it walks the whole
key space) under :data:`jobs.platform.keys.CACHE_PREFIX`, and removed with ``UNLINK`` (the memory is
freed in a background thread) in pipelined batches.
"""

from __future__ import annotations

import redis

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
