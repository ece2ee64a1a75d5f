"""The schedule read model's value objects: a schedule, one of its ticks, an operator's action.

Every time is an aware datetime; ``as_dict`` gives ISO 8601 with the offset of the configured
zone, under the field names the API and the CLI show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jobs.platform.schedules import to_ms
from monitoring.records import from_ms

#: What became of a tick. A tick a scheduler sent on time is ENQUEUED, one sent after a restart
#: within its window CAUGHT_UP; DUPLICATE is another scheduler process finding it taken; MISSED
#: is one nobody sent by its deadline; PAUSED one due while the schedule was paused; FAILED one
#: claimed but not enqueued (Redis refused). RUN_NOW is an operator's extra run, not a cron tick.
ENQUEUED, CAUGHT_UP, DUPLICATE = "enqueued", "caught_up", "duplicate"
MISSED, PAUSED, FAILED, RUN_NOW = "missed", "paused", "failed", "run_now"
OUTCOMES = (ENQUEUED, CAUGHT_UP, DUPLICATE, MISSED, PAUSED, FAILED, RUN_NOW)
#: Outcomes that sent a task.
SENT_OUTCOMES = (ENQUEUED, CAUGHT_UP, RUN_NOW)
#: Cron ticks that need nothing more: sent, or due while paused.
HANDLED_OUTCOMES = (ENQUEUED, CAUGHT_UP, PAUSED)
#: Operators' actions on a schedule.
PAUSE, RESUME = "pause", "resume"


def isoformat(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """ISO 8601 with the offset of ``zone`` (None stays None)."""
    return None if moment is None else moment.astimezone(zone).isoformat()


@dataclass(frozen=True)
class Tick:
    """One tick of a schedule and its outcome; ``task_state`` is filled in by reads."""

    schedule: str
    fire_time: datetime
    outcome: str
    task_id: str | None = None
    lateness: float | None = None
    recorded_at: datetime | None = None
    recorded_by: str | None = None
    requested_by: str | None = None
    detail: str | None = None
    task_state: str | None = None

    @property
    def sent(self) -> bool:
        return self.outcome in SENT_OUTCOMES

    def member(self) -> str:
        """The tick as the store keeps it (its score is the nominal fire time)."""
        fields = {
            # The fire time again, although it is the score: two ticks recorded in one millisecond
            # with one outcome (a missed-run check) must stay two members.
            "fire_ms": to_ms(self.fire_time),
            "outcome": self.outcome,
            "task_id": self.task_id,
            "lateness_ms": None if self.lateness is None else round(self.lateness * 1000),
            "recorded_at": None if self.recorded_at is None else to_ms(self.recorded_at),
            "recorded_by": self.recorded_by,
            "requested_by": self.requested_by,
            "detail": self.detail,
        }
        return json.dumps(
            {name: value for name, value in fields.items() if value is not None}, sort_keys=True
        )

    @classmethod
    def from_member(cls, schedule: str, fire_ms: float, member: bytes | str) -> Tick:
        data = json.loads(member)
        lateness_ms = data.get("lateness_ms")
        return cls(
            schedule=schedule,
            fire_time=from_ms(int(fire_ms)),
            outcome=data["outcome"],
            task_id=data.get("task_id"),
            lateness=None if lateness_ms is None else lateness_ms / 1000,
            recorded_at=from_ms(data.get("recorded_at")),
            recorded_by=data.get("recorded_by"),
            requested_by=data.get("requested_by"),
            detail=data.get("detail"),
        )

    def with_task_state(self, state: str | None) -> Tick:
        return replace(self, task_state=state)

    def as_dict(self, zone: ZoneInfo = UTC) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "fire_time": isoformat(self.fire_time, zone),
            "outcome": self.outcome,
            "task_id": self.task_id,
            "task_state": self.task_state,
            "lateness": self.lateness,
            "recorded_at": isoformat(self.recorded_at, zone),
            "recorded_by": self.recorded_by,
            "requested_by": self.requested_by,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Schedule:
    """One schedule as every process sees it: its definition, its state, its recent ticks.

    ``last_run`` is the nominal time of the last tick that sent a task (or of the last run-now),
    ``last_outcome`` the outcome of the latest tick, ``lag`` the seconds since the oldest due
    tick that was neither sent nor paused (0 when none; None before its first tick),
    ``last_success`` when the task of one of the recent ticks last finished SUCCESS.
    """

    name: str
    actor: str
    queue: str
    cron: str
    timezone: ZoneInfo
    window: float
    grace: int
    next_run: datetime | None
    last_run: datetime | None = None
    last_outcome: str | None = None
    last_task_id: str | None = None
    last_task_state: str | None = None
    last_lateness: float | None = None
    last_success: datetime | None = None
    lag: float | None = None
    paused: bool = False
    paused_by: str | None = None
    paused_at: datetime | None = None
    recent_ticks: list[Tick] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        zone = self.timezone
        return {
            "name": self.name,
            "actor": self.actor,
            "queue": self.queue,
            "cron": self.cron,
            "timezone": zone.key,
            "window": self.window,
            "grace": self.grace,
            "next_run": isoformat(self.next_run, zone),
            "last_run": isoformat(self.last_run, zone),
            "last_outcome": self.last_outcome,
            "last_task_id": self.last_task_id,
            "last_task_state": self.last_task_state,
            "last_lateness": self.last_lateness,
            "last_success": isoformat(self.last_success, zone),
            "lag": self.lag,
            "paused": self.paused,
            "paused_by": self.paused_by,
            "paused_at": isoformat(self.paused_at, zone),
            "recent_ticks": [tick.as_dict(zone) for tick in self.recent_ticks],
        }


@dataclass(frozen=True)
class ScheduleAction:
    """An operator's pause, resume or run-now, with who asked; ``changed`` is False for a pause of
    a paused schedule or a resume of a running one. ``task_id`` is the task a run-now sent."""

    schedule: str
    action: str
    requested_by: str
    at: datetime
    changed: bool = True
    task_id: str | None = None

    def member(self) -> str:
        return json.dumps(
            {
                "schedule": self.schedule,
                "action": self.action,
                "requested_by": self.requested_by,
                "at": to_ms(self.at),
                "changed": self.changed,
                "task_id": self.task_id,
            },
            sort_keys=True,
        )

    @classmethod
    def from_member(cls, member: bytes | str) -> ScheduleAction:
        data = json.loads(member)
        return cls(
            schedule=data["schedule"],
            action=data["action"],
            requested_by=data["requested_by"],
            at=from_ms(data["at"]),
            changed=data.get("changed", True),
            task_id=data.get("task_id"),
        )

    def as_dict(self, zone: ZoneInfo = UTC) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "action": self.action,
            "requested_by": self.requested_by,
            "at": isoformat(self.at, zone),
            "changed": self.changed,
            "task_id": self.task_id,
        }
