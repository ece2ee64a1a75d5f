"""Which workers are alive: those whose last heartbeat is recent enough."""

from __future__ import annotations

from jobs.platform import keys
from jobs.platform.defaults import DEFAULT_HEARTBEAT_INTERVAL_S
from monitoring.store import TaskStore, now_ms

#: A worker is shown dead after this many heartbeats missed in a row.
DEFAULT_MISSED_HEARTBEATS = 3


def dead_after_ms(interval: float = DEFAULT_HEARTBEAT_INTERVAL_S) -> int:
    return int(interval * DEFAULT_MISSED_HEARTBEATS * 1000)


def live_worker_ids(store: TaskStore, interval: float = DEFAULT_HEARTBEAT_INTERVAL_S) -> set[str]:
    """Ids of workers whose last heartbeat is recent enough. One round trip."""
    since = now_ms() - dead_after_ms(interval)
    return {member.decode() for member in store.client.zrangebyscore(keys.WORKERS, since, "+inf")}
