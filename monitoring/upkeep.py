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
from monitoring.records import REVOKED, STATES, SUCCESS
from monitoring.store import TaskStore, now_ms

#: Upkeep (trimming history, flagging orphans) runs at most once per this many seconds.
DEFAULT_UPKEEP_PERIOD = 60
#: How long a stopped or dead worker stays listed, in seconds.
DEFAULT_WORKER_RECORD_TTL = 24 * 3600
#: States whose history index is kept as long as successes; the others as long as failures.
TERMINAL_OR_RECENT = (SUCCESS, REVOKED)


def run_upkeep(store: TaskStore, broker: Broker, *, interval: float = DEFAULT_HEARTBEAT_INTERVAL_S) -> dict:
    """Trim history by age and count, flag orphaned tasks, forget long-dead workers.

    Its cost depends on the number of actors, queues and running tasks, never on history size:
    each trim removes only what expired.
    """
    flagged = flag_orphans(store, interval=interval)
    trimmed = trim_history(store, broker)
    roll_up(store)
    store.client.zremrangebyscore(keys.WORKERS, "-inf", now_ms() - DEFAULT_WORKER_RECORD_TTL * 1000)
    return {"orphaned": flagged, "trimmed": trimmed}


def flag_orphans(store: TaskStore, *, interval: float = DEFAULT_HEARTBEAT_INTERVAL_S) -> int:
    """Flag STARTED tasks whose worker is dead; returns how many were newly flagged."""
    live = live_worker_ids(store, interval)
    flagged = 0
    for record in store.load_started():
        worker_is_dead = record.get("worker") and record["worker"] not in live
        if worker_is_dead and "orphaned" not in record:
            flagged += store.record("orphan", record["id"], {"worker": record["worker"]}) == "orphaned"
    return flagged


def trim_history(store: TaskStore, broker: Broker) -> int:
    """Drop index entries past their retention, and past the count cap; returns how many."""
    now = now_ms()
    success_cutoff = now - store.retention.success * 1000
    failure_cutoff = now - store.retention.failure * 1000
    indexes = {keys.HISTORY: success_cutoff}
    indexes.update({keys.history_by("actor", name): success_cutoff for name in broker.get_declared_actors()})
    indexes.update({keys.history_by("queue", name): success_cutoff for name in broker.get_declared_queues()})
    for state in STATES:
        cutoff = success_cutoff if state in TERMINAL_OR_RECENT else failure_cutoff
        indexes[keys.history_by("state", state)] = cutoff
    pipeline = store.client.pipeline(transaction=False)
    for key, cutoff in indexes.items():
        pipeline.zremrangebyscore(key, "-inf", cutoff)
        pipeline.zremrangebyrank(key, 0, -store.retention.history_max - 1)
    removed = sum(pipeline.execute())
    _forget_old_failure_groups(store, failure_cutoff)
    return removed


def _forget_old_failure_groups(store: TaskStore, cutoff: int) -> None:
    stale = [
        fingerprint
        for fingerprint, group in store.client.hscan_iter(keys.FAILURE_GROUPS)
        if json.loads(group)["last"] < cutoff
    ]
    if stale:
        store.client.hdel(keys.FAILURE_GROUPS, *stale)
