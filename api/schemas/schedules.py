"""Schedules (the scheduler's read model), their ticks, and an operator's pause, resume or run-now."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import Schema, fields, pre_dump, validate

from monitoring.schedules import OUTCOMES, Schedule
from monitoring.schedules.records import PAUSE, RESUME, RUN_NOW

#: The example times of the documented schedule (the configured zone's offset).
NEXT_RUN_EXAMPLE = "2026-01-05T10:01:00+08:00"
LAST_RUN_EXAMPLE = "2026-01-05T10:00:00+08:00"
TASK_ID_EXAMPLE = "0b9c6f5e-4c1e-5b8e-9a55-6f1f3f8d2a10"


def in_zone(record: Any, zone: ZoneInfo) -> Any:
    """The dataclass ``record`` with every datetime moved to ``zone`` (shown with its offset)."""
    moved = {
        field.name: getattr(record, field.name).astimezone(zone)
        for field in dataclass_fields(record)
        if isinstance(getattr(record, field.name), datetime)
    }
    return replace(record, **moved)


def _outcome(**options: Any) -> fields.String:
    return fields.String(allow_none=True, validate=validate.OneOf(OUTCOMES), **options)


class TickSchema(Schema):
    """One tick of a schedule: its nominal time, what became of it, the task it sent."""

    schedule = fields.String(required=True, metadata={"example": "check_pending_bills"})
    fire_time = fields.DateTime(required=True, metadata={"example": LAST_RUN_EXAMPLE})
    outcome = _outcome(required=True, metadata={"example": "enqueued"})
    task_id = fields.String(allow_none=True, required=True, metadata={"example": TASK_ID_EXAMPLE})
    task_state = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Its task's status now", "example": "SUCCESS"},
    )
    lateness = fields.Float(
        allow_none=True, required=True, metadata={"description": "Seconds after its time it was sent"}
    )
    recorded_at = fields.DateTime(allow_none=True, required=True)
    recorded_by = fields.String(
        allow_none=True, required=True, metadata={"description": "The scheduler process (host:pid)"}
    )
    requested_by = fields.String(
        allow_none=True, required=True, metadata={"description": "Who asked, for a run-now"}
    )
    detail = fields.String(allow_none=True, required=True)


class ScheduleSchema(Schema):
    """A schedule: its cron in its zone, next and last run, last outcome, pause, recent ticks."""

    name = fields.String(required=True, metadata={"example": "check_pending_bills"})
    actor = fields.String(required=True, metadata={"example": "check_pending_bills"})
    queue = fields.String(required=True, metadata={"example": "finance"})
    cron = fields.String(required=True, metadata={"example": "* * * * *"})
    timezone = fields.String(required=True, metadata={"example": "Asia/Shanghai"})
    window = fields.Float(required=True, metadata={"description": "Seconds a missed tick may be caught up"})
    grace = fields.Integer(required=True, metadata={"description": "Seconds late a tick is still sent"})
    next_run = fields.DateTime(allow_none=True, required=True, metadata={"example": NEXT_RUN_EXAMPLE})
    last_run = fields.DateTime(allow_none=True, required=True, metadata={"example": LAST_RUN_EXAMPLE})
    last_outcome = _outcome(required=True, metadata={"example": "enqueued"})
    last_task_id = fields.String(allow_none=True, required=True, metadata={"example": TASK_ID_EXAMPLE})
    last_task_state = fields.String(allow_none=True, required=True, metadata={"example": "SUCCESS"})
    last_lateness = fields.Float(allow_none=True, required=True, metadata={"example": 0.004})
    last_success = fields.DateTime(allow_none=True, required=True)
    lag = fields.Float(
        allow_none=True,
        required=True,
        metadata={"description": "Seconds since the oldest due tick neither sent nor paused", "example": 0.0},
    )
    paused = fields.Boolean(required=True, metadata={"example": False})
    paused_by = fields.String(allow_none=True, required=True)
    paused_at = fields.DateTime(allow_none=True, required=True)
    recent_ticks = fields.List(fields.Nested(TickSchema), required=True)

    @pre_dump
    def in_its_zone(self, schedule: Schedule, **kwargs: Any) -> dict[str, Any]:
        """Times in the schedule's zone (the configured one), as ``Schedule.as_dict`` gives them."""
        zone = schedule.timezone
        shown = in_zone(schedule, zone)
        return {
            **{field.name: getattr(shown, field.name) for field in dataclass_fields(shown)},
            "timezone": zone.key,
            "recent_ticks": [in_zone(tick, zone) for tick in schedule.recent_ticks],
        }


class ScheduleListSchema(Schema):
    schedules = fields.List(fields.Nested(ScheduleSchema), required=True)


class ScheduleActionSchema(Schema):
    """An operator's pause, resume or run-now; ``changed`` is false for a pause of a paused schedule
    or a resume of a running one; ``task_id`` is the task a run-now sent."""

    schedule = fields.String(required=True, metadata={"example": "check_pending_bills"})
    action = fields.String(
        required=True, validate=validate.OneOf((PAUSE, RESUME, RUN_NOW)), metadata={"example": "pause"}
    )
    requested_by = fields.String(
        required=True, metadata={"description": "The token's name, or the operator's user name"}
    )
    at = fields.DateTime(required=True, metadata={"example": LAST_RUN_EXAMPLE})
    changed = fields.Boolean(required=True)
    task_id = fields.String(allow_none=True, required=True, metadata={"example": TASK_ID_EXAMPLE})
