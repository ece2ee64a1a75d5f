"""The scheduler's records the alert rules read: its heartbeat and the schedules it missed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from jobs.platform import keys
from monitoring.records import from_ms
from monitoring.store import TaskStore, now_ms, reply_text

#: How long the scheduler heartbeat is kept after the last tick, in seconds.
SCHEDULER_HEARTBEAT_TTL = 30 * 24 * 3600


def record_scheduler_heartbeat(store: TaskStore) -> None:
    """Note that a scheduler process is alive (it calls this every tick). One round trip."""
    store.client.set(keys.SCHEDULER_HEARTBEAT, now_ms(), ex=SCHEDULER_HEARTBEAT_TTL)


def last_scheduler_heartbeat(store: TaskStore) -> datetime | None:
    """When a scheduler process last ticked, or None if none did recently. One round trip."""
    return from_ms(reply_text(store.client.get(keys.SCHEDULER_HEARTBEAT)))


def record_missed_schedule(store: TaskStore, name: str, fire_time: datetime, *, pipeline=None) -> bool | None:
    """Record that schedule ``name`` did not run at ``fire_time``; False if already recorded.

    The schedule manager calls this (monitoring.schedules); the ``missed_schedule`` rule reports
    it at its next evaluation. Entries are kept as long as failures are. One round trip, or
    queued on ``pipeline`` (then None is returned).
    """
    member = json.dumps(
        {"schedule": name, "fire_time": fire_time.astimezone(UTC).isoformat()}, sort_keys=True
    )
    now = now_ms()
    target = pipeline if pipeline is not None else store.client.pipeline(transaction=False)
    target.zadd(keys.MISSED_SCHEDULES, {member: now}, nx=True)
    target.zremrangebyscore(keys.MISSED_SCHEDULES, "-inf", now - store.retention.failure * 1000)
    if pipeline is not None:
        return None
    added, _ = target.execute()
    return bool(added)
