"""The once-a-minute upkeep one live worker does for the whole cluster.

Its cost depends on the number of actors, queues and running tasks, never on history size:
each trim removes only what expired.
"""

from __future__ import annotations

import json

from dramatiq.broker import Broker

from jobs.platform import keys
from jobs.platform.defaults import DEFAULT_HEARTBEAT_INTERVAL_S
from monitoring.counters import roll_up
from monitoring.liveness import live_worker_ids
from monitoring.records import STATES
from monitoring.store import TaskStore, now_ms

#: Upkeep (trimming history, flagging orphans) runs at most once per this many seconds.
DEFAULT_UPKEEP_PERIOD = 60
#: How long a stopped or dead worker stays listed, in seconds.
DEFAULT_WORKER_RECORD_TTL = 24 * 3600
#: Expired tasks removed from the indexes per script call, and calls per upkeep at most.
TRIM_BATCH = 1_000
MAX_TRIM_BATCHES = 100
#: The longest delay Dramatiq's Redis broker accepts: no record lives longer than the failure
#: retention plus this.
MAX_DELAY_S = 7 * 24 * 3600
#: Removes up to ARGV[3] tasks whose records expired by ARGV[2] (ms) from every history index.
#: ARGV[1] is the key prefix, ARGV[4..] the task states. Members of ``expiries`` are
#: "<id>\t<actor>\t<queue>" (record.lua). Returns {index entries removed, expiries read}.
TRIM_SCRIPT = """
local prefix, now, batch = ARGV[1], ARGV[2], tonumber(ARGV[3])
local expired = redis.call("zrangebyscore", prefix .. "expiries", "-inf", now, "LIMIT", 0, batch)
local removed = 0
for _, entry in ipairs(expired) do
    local id, actor, queue = string.match(entry, "^([^\t]*)\t([^\t]*)\t(.*)$")
    if id then
        removed = removed + redis.call("zrem", prefix .. "history", id)
        removed = removed + redis.call("zrem", prefix .. "history:actor:" .. actor, id)
        removed = removed + redis.call("zrem", prefix .. "history:queue:" .. queue, id)
        for i = 4, #ARGV do
            removed = removed + redis.call("zrem", prefix .. "history:state:" .. ARGV[i], id)
        end
    end
end
if #expired > 0 then
    redis.call("zrem", prefix .. "expiries", unpack(expired))
end
return {removed, #expired}
"""


def run_upkeep(store: TaskStore, broker: Broker, *, interval: float = DEFAULT_HEARTBEAT_INTERVAL_S) -> dict:
    """Flag orphaned tasks, resolve lost ones, trim expired tasks from history, roll counters up.

    Its cost depends on the number of running tasks and of tasks expiring since the last run,
    never on history size.
    """
    started = store.load_started()
    flagged = flag_orphans(store, interval=interval, started=started)
    lost = resolve_lost(store, started)
    trimmed = trim_history(store, broker)
    roll_up(store)
    store.client.zremrangebyscore(keys.WORKERS, "-inf", now_ms() - DEFAULT_WORKER_RECORD_TTL * 1000)
    return {"orphaned": flagged, "lost": lost, "trimmed": trimmed}


def flag_orphans(
    store: TaskStore,
    *,
    interval: float = DEFAULT_HEARTBEAT_INTERVAL_S,
    started: list[dict[str, str]] | None = None,
) -> int:
    """Flag STARTED tasks whose worker is dead; returns how many were newly flagged."""
    live = live_worker_ids(store, interval)
    flagged = 0
    for record in store.load_started() if started is None else started:
        worker_is_dead = record.get("worker") and record["worker"] not in live
        if worker_is_dead and "orphaned" not in record:
            flagged += store.record("orphan", record["id"], {"worker": record["worker"]}) == "orphaned"
    return flagged


def resolve_lost(store: TaskStore, started: list[dict[str, str]]) -> int:
    """Fail, as "Lost", STARTED tasks whose message the broker no longer holds; returns how many.

    A worker writes a task's finish record before its acknowledgement, in one round trip. A task
    still STARTED whose message is neither held by its worker (Dramatiq's ack set) nor on its
    queue was acknowledged (or dead-lettered) without its record: Redis refused the record. Its
    outcome is unknown, but it is no longer running. One round trip per call, plus one per task
    resolved.
    """
    checked = [record for record in started if record.get("broker_message_id") and record.get("worker")]
    if not checked:
        return 0
    namespace = store.broker_namespace
    pipeline = store.client.pipeline(transaction=False)
    for record in checked:
        message_id, queue = record["broker_message_id"], record["queue"]
        pipeline.sismember(keys.broker_acks(namespace, record["worker"], queue), message_id)
        pipeline.hexists(keys.broker_messages(namespace, queue), message_id)
    replies = pipeline.execute()
    resolved = 0
    for record, held, queued in zip(checked, replies[::2], replies[1::2], strict=True):
        if held or queued:
            continue
        reason = (
            f"acknowledged by worker {record['worker']}, but its finish record never arrived "
            "(Redis refused it); the outcome is unknown"
        )
        resolved += (
            store.record("lost", record["id"], {"worker": record["worker"], "reason": reason}) == "lost"
        )
    return resolved


def trim_history(store: TaskStore, broker: Broker) -> int:
    """Remove expired tasks from every history index, and trim each index to the count cap.

    The record script notes each task's expiry (``expiries``), so a task leaves the indexes when
    its record expires, not before: a task scheduled days ahead or waiting in a backlog stays
    listed, and the indexes of actors no process declares any more are trimmed too. Returns how
    many index entries were removed.
    """
    removed = 0
    for _ in range(MAX_TRIM_BATCHES):
        count, entries = store.client.eval(TRIM_SCRIPT, 0, keys.PREFIX, now_ms(), TRIM_BATCH, *STATES)
        removed += int(count)
        if int(entries) < TRIM_BATCH:
            break
    removed += _cap_indexes(store, broker)
    _forget_old_failure_groups(store, now_ms() - store.retention.failure * 1000)
    return removed


def _cap_indexes(store: TaskStore, broker: Broker) -> int:
    """Keep each index within the count cap; and drop what predates expiry tracking by age."""
    oldest_kept = now_ms() - (store.retention.failure + MAX_DELAY_S) * 1000
    indexes = [keys.HISTORY]
    indexes += [keys.history_by("actor", name) for name in broker.get_declared_actors()]
    indexes += [keys.history_by("queue", name) for name in broker.get_declared_queues()]
    indexes += [keys.history_by("state", state) for state in STATES]
    pipeline = store.client.pipeline(transaction=False)
    for key in indexes:
        pipeline.zremrangebyscore(key, "-inf", oldest_kept)
        pipeline.zremrangebyrank(key, 0, -store.retention.history_max - 1)
    return sum(pipeline.execute())


def _forget_old_failure_groups(store: TaskStore, cutoff: int) -> None:
    stale = [
        fingerprint
        for fingerprint, group in store.client.hscan_iter(keys.FAILURE_GROUPS)
        if json.loads(group)["last"] < cutoff
    ]
    if stale:
        store.client.hdel(keys.FAILURE_GROUPS, *stale)
