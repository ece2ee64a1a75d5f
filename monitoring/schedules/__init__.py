"""Schedules' read and act models, beside TaskMonitor and TaskManager.

``ScheduleMonitor`` lists the schedules (definitions from jobs.platform.schedules, state from
Redis: next and last run, last outcome, pause, lag, recent ticks); ``ScheduleManager`` fires
ticks (each claimed once across scheduler processes), records misses, and pauses, resumes and
runs a schedule now, recording who asked. The scheduler process, the workers' alert rules and
the faces all go through them; key names stay in jobs.platform.keys.
"""

from monitoring.schedules.actions import ScheduleManager
from monitoring.schedules.queries import ScheduleMonitor
from monitoring.schedules.records import (
    CAUGHT_UP,
    DUPLICATE,
    ENQUEUED,
    FAILED,
    MISSED,
    OUTCOMES,
    PAUSED,
    RUN_NOW,
    Schedule,
    ScheduleAction,
    Tick,
)
from monitoring.schedules.store import ScheduleStore

__all__ = [
    "CAUGHT_UP",
    "DUPLICATE",
    "ENQUEUED",
    "FAILED",
    "MISSED",
    "OUTCOMES",
    "PAUSED",
    "RUN_NOW",
    "Schedule",
    "ScheduleAction",
    "ScheduleManager",
    "ScheduleMonitor",
    "ScheduleStore",
    "Tick",
]
