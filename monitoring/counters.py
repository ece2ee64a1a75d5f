"""Per-actor counters by minute, hour and day: written per event to the minute bucket, rolled up
into hour and day buckets once a minute, and summed over a window for statistics.

A counter field is ``<actor>@<queue>:<metric>``; metrics are enqueued, succeeded, failed,
retried, revoked, duration_sum, duration_max (ms) and b<i> (duration histogram: every attempt
that ran is in exactly one bucket, so their sum is the number of attempts processed).
"""

from __future__ import annotations

from collections import defaultdict

from jobs.platform import keys
from monitoring.store import TaskStore, now_ms

MINUTE = keys.GRANULARITIES["minute"]
#: A minute is rolled up once it is this many minutes old, leaving time for late records.
ROLL_UP_LAG = 2
#: At most this many minutes are rolled up in one go (after an outage, older ones are dropped).
MAX_ROLL_UP = 2 * 24 * 60
#: The longest window each granularity serves, in seconds.
WINDOW_LIMITS = (("minute", 3 * 3600), ("hour", 3 * 24 * 3600), ("day", 366 * 24 * 3600))

Totals = dict[str, dict[str, int]]


def roll_up(store: TaskStore) -> int:
    """Add finished minute buckets into their hour and day buckets; returns how many minutes.

    Runs under the once-a-minute upkeep claim, so no two processes roll up at once. Three round
    trips per minute rolled (normally one minute).
    """
    client = store.client
    last_minute = now_ms() // MINUTE - ROLL_UP_LAG
    marker = client.get(keys.STATS_ROLLED_UP)
    # Never rolled up before: every minute still kept may hold counts.
    first = max(int(marker) + 1 if marker else 0, last_minute - MAX_ROLL_UP + 1)
    for minute in range(first, last_minute + 1):
        _roll_up_minute(store, minute)
    if first <= last_minute:
        client.set(keys.STATS_ROLLED_UP, last_minute)
    return max(0, last_minute - first + 1)


def _roll_up_minute(store: TaskStore, minute: int) -> None:
    client = store.client
    counters = {
        name.decode(): int(value) for name, value in client.hgetall(keys.stats("minute", minute)).items()
    }
    if not counters:
        return
    targets = [
        (keys.stats(granularity, minute * MINUTE // size), store.retention.counters[granularity])
        for granularity, size in keys.GRANULARITIES.items()
        if granularity != "minute"
    ]
    maxima = [name for name in counters if name.endswith(":duration_max")]
    current_maxima: list = [None] * len(targets)
    if maxima:
        pipeline = client.pipeline(transaction=False)
        for key, _ in targets:
            pipeline.hmget(key, maxima)
        current_maxima = pipeline.execute()
    pipeline = client.pipeline(transaction=False)
    for (key, ttl), existing in zip(targets, current_maxima, strict=True):
        for name, value in counters.items():
            if name.endswith(":duration_max"):
                continue
            pipeline.hincrby(key, name, value)
        for name, previous in zip(maxima, existing or [], strict=False):
            if previous is None or int(previous) < counters[name]:
                pipeline.hset(key, name, counters[name])
        pipeline.expire(key, ttl)
    pipeline.execute()


def window_totals(store: TaskStore, window: int) -> Totals:
    """Per actor, every counter summed over the last ``window`` seconds. One or two round trips.

    Windows up to three hours read minute buckets; longer ones read hour (or day) buckets plus
    the minutes not rolled up yet, so the figures are exact either way.
    """
    granularity = next((name for name, longest in WINDOW_LIMITS if window <= longest), "day")
    size = keys.GRANULARITIES[granularity]
    now = now_ms()
    bucket_keys = [keys.stats(granularity, bucket) for bucket in _buckets(now, window, size)]
    if granularity != "minute":
        marker = store.client.get(keys.STATS_ROLLED_UP)
        window_start = (now - window * 1000) // MINUTE
        first_unrolled = max(int(marker) + 1 if marker else 0, window_start, now // MINUTE - MAX_ROLL_UP)
        bucket_keys += [keys.stats("minute", minute) for minute in range(first_unrolled, now // MINUTE + 1)]
    pipeline = store.client.pipeline(transaction=False)
    for key in bucket_keys:
        pipeline.hgetall(key)
    totals: Totals = defaultdict(lambda: defaultdict(int))
    for counters in pipeline.execute():
        for name, value in counters.items():
            owner, _, metric = name.decode().rpartition(":")
            actor = owner.partition("@")[0]
            if metric == "duration_max":
                totals[actor][metric] = max(totals[actor][metric], int(value))
            else:
                totals[actor][metric] += int(value)
    return totals


def _buckets(now: int, window: int, size: int) -> range:
    last = now // size
    count = max(1, -(-window * 1000 // size))
    return range(last - count + 1, last + 1)
