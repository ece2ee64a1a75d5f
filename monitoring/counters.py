"""Per-actor counters by minute, hour and day: written per event to the minute bucket, rolled up
into hour and day buckets once a minute, and summed over a window for statistics.

A counter field is ``<actor>@<queue>:<metric>``; metrics are enqueued, succeeded, failed,
retried, revoked, duration_sum, duration_max (ms), duration_min (ms, where record.lua counts it)
and b<i> (duration histogram: every attempt that ran is in exactly one bucket, so their sum is
the number of attempts processed).
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
#: Minutes rolled up per round trip (a first run goes through all MAX_ROLL_UP of them).
ROLL_UP_BATCH = 200
#: The longest window each granularity serves, in seconds.
WINDOW_LIMITS = (("minute", 3 * 3600), ("hour", 3 * 24 * 3600), ("day", 366 * 24 * 3600))

#: The granularities a finished minute is added into.
ROLLED_INTO = tuple(granularity for granularity in keys.GRANULARITIES if granularity != "minute")
#: Counters that keep an extreme (ms) instead of a sum; duration_min once record.lua counts it.
EXTREMES = {"duration_max": max, "duration_min": min}
#: Adds one minute into its hour and day buckets and marks it rolled up, or nothing if it is.
#: KEYS: the minute's bucket, the rolled-up marker, the buckets it goes into;
#: ARGV: the minute, then each target bucket's time-to-live (s).
ROLL_UP_SCRIPT = """
local EXTREMES = {EXTREMES_TABLE}
local minute = tonumber(ARGV[1])
local marker = tonumber(redis.call("get", KEYS[2]))
if marker and marker >= minute then
    return 0
end
local counters = redis.call("hgetall", KEYS[1])
for target = 3, #KEYS do
    local key = KEYS[target]
    for index = 1, #counters, 2 do
        -- Values go on as the text Redis gave (a Lua number would be printed with 14 digits).
        local name, value = counters[index], counters[index + 1]
        local extreme = EXTREMES[string.match(name, ":([^:]+)$")]
        if extreme then
            local kept = tonumber(redis.call("hget", key, name))
            redis.call("hset", key, name, kept and extreme(kept, tonumber(value)) or value)
        else
            redis.call("hincrby", key, name, value)
        end
    end
    if #counters > 0 then
        redis.call("expire", key, ARGV[target - 1])
    end
end
redis.call("set", KEYS[2], minute)
return 1
""".replace(
    "EXTREMES_TABLE", ", ".join(f"{metric} = math.{keep.__name__}" for metric, keep in EXTREMES.items())
)

Totals = dict[str, dict[str, int]]


def roll_up(store: TaskStore) -> int:
    """Add finished minute buckets into their hour and day buckets; returns how many minutes.

    One round trip reads the marker; then each minute is one script call (sent ROLL_UP_BATCH to a
    round trip) that, atomically in Redis, adds the minute and advances the marker, or does
    nothing if the marker is past it already. So a roll-up run again after its process died
    part-way, or two upkeeps that overlap (the claim is per period, and a slow one runs into the
    next), count each minute once.
    """
    client = store.client
    last_minute = now_ms() // MINUTE - ROLL_UP_LAG
    marker = client.get(keys.STATS_ROLLED_UP)
    # Never rolled up before: every minute still kept may hold counts.
    first = max(int(marker) + 1 if marker else 0, last_minute - MAX_ROLL_UP + 1)
    script = client.register_script(ROLL_UP_SCRIPT)
    ttls = [store.retention.counters[granularity] for granularity in ROLLED_INTO]
    rolled = 0
    minutes = range(first, last_minute + 1)
    for batch_start in range(0, len(minutes), ROLL_UP_BATCH):
        # In order on one connection: each call still checks the marker its predecessor set.
        pipeline = client.pipeline(transaction=False)
        for minute in minutes[batch_start : batch_start + ROLL_UP_BATCH]:
            targets = [
                keys.stats(granularity, minute * MINUTE // keys.GRANULARITIES[granularity])
                for granularity in ROLLED_INTO
            ]
            script(
                keys=[keys.stats("minute", minute), keys.STATS_ROLLED_UP, *targets],
                args=[minute, *ttls],
                client=pipeline,
            )
        rolled += sum(pipeline.execute())
    return rolled


def window_totals(store: TaskStore, window: int) -> Totals:
    """Per actor, every counter summed over the last ``window`` seconds. One or two round trips.

    Windows up to three hours read minute buckets; longer ones read hour (or day) buckets plus
    the minutes not rolled up yet, so the figures are exact either way. The buckets are read in
    one transaction with the marker again, so that a minute rolled up between the two round trips
    counts once, from its hour bucket.
    """
    granularity = next((name for name, longest in WINDOW_LIMITS if window <= longest), "day")
    size = keys.GRANULARITIES[granularity]
    now = now_ms()
    bucket_keys = [keys.stats(granularity, bucket) for bucket in _buckets(now, window, size)]
    minutes = range(0)  # longer windows: the minutes not rolled up yet
    if granularity != "minute":
        marker = store.client.get(keys.STATS_ROLLED_UP)
        window_start = (now - window * 1000) // MINUTE
        first_unrolled = max(int(marker) + 1 if marker else 0, window_start, now // MINUTE - MAX_ROLL_UP)
        minutes = range(first_unrolled, now // MINUTE + 1)
    pipeline = store.client.pipeline(transaction=True)
    pipeline.get(keys.STATS_ROLLED_UP)
    for key in bucket_keys + [keys.stats("minute", minute) for minute in minutes]:
        pipeline.hgetall(key)
    marker, *replies = pipeline.execute()
    rolled_up = int(marker) if marker else -1
    read = replies[: len(bucket_keys)] + [
        counters
        for minute, counters in zip(minutes, replies[len(bucket_keys) :], strict=True)
        if minute > rolled_up
    ]
    totals: Totals = defaultdict(lambda: defaultdict(int))
    for counters in read:
        for name, value in counters.items():
            owner, _, metric = name.decode().rpartition(":")
            figures = totals[owner.partition("@")[0]]
            extreme = EXTREMES.get(metric)
            if extreme is None:
                figures[metric] += int(value)
            else:
                figures[metric] = extreme(figures[metric], int(value)) if metric in figures else int(value)
    return totals


def _buckets(now: int, window: int, size: int) -> range:
    last = now // size
    count = max(1, -(-window * 1000 // size))
    return range(last - count + 1, last + 1)
