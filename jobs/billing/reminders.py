"""The bill reminder job (queue ``finance``): the due-soon and overdue e-mails the reminder policy owes.

The policy (jobs.billing.notifications.policy): due soon once, overdue on days 1, 7, 14 and 30;
each step is recorded when it is queued, so no run, however often it fires, sends a step twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from jobs.billing.models import Bill
from jobs.billing.notifications.outbox import dispatch_queued_notifications
from jobs.billing.notifications.policy import (
    OVERDUE_REMINDER_DAYS,
    queue_due_soon_reminders,
    queue_overdue_reminders,
)
from jobs.billing.periods import parse_fire_time
from jobs.platform import queues
from jobs.platform.context import current
from jobs.platform.errors import PermanentError

DEFAULT_DAYS_AHEAD = 3


def due_soon_bills(fire_time: datetime, days_ahead: int, zone: ZoneInfo) -> Select:
    """Pending bills falling due from ``fire_time`` to the end of the local day ``days_ahead`` days later."""
    last_local_day = fire_time.astimezone(zone).date() + timedelta(days=days_ahead)
    # Whole local days: a bill due at 23:00 on the last day is as "due within 3 days" as one due at 09:00.
    window_end = datetime.combine(last_local_day + timedelta(days=1), time(), tzinfo=zone)
    return select(Bill.id).where(Bill.status == "pending", Bill.due_at >= fire_time, Bill.due_at < window_end)


@dramatiq.actor(queue_name=queues.FINANCE)
def send_bill_reminders(days_ahead: int = DEFAULT_DAYS_AHEAD, fire_time: str | None = None) -> dict[str, Any]:
    """Queue the due-soon and overdue reminders the policy owes at the fire time, then send them.

    A step already queued for a bill is never queued again (jobs.billing.notifications.outbox), and
    notifications already sent or being sent are not enqueued again.
    """
    if days_ahead < 0:
        raise PermanentError(f"days_ahead must not be negative, got {days_ahead}")
    runtime = current()
    fired_at = parse_fire_time(fire_time)
    with runtime.sessions.begin() as session:
        created = create_reminders_owed(
            session,
            fire_time=fired_at,
            days_ahead=days_ahead,
            zone=runtime.settings.timezone,
            overdue_days=runtime.settings.overdue_reminder_days,
        )
    # Its own transaction, committed before the messages go out: also picks up rows a crashed
    # earlier run created but never enqueued.
    with runtime.sessions.begin() as session:
        enqueued = dispatch_queued_notifications(session)
    local_date = fired_at.astimezone(runtime.settings.timezone).date()
    return {"local_date": local_date.isoformat(), "created": created, "enqueued": enqueued}


def create_reminders_owed(
    session: Session,
    *,
    fire_time: datetime,
    days_ahead: int,
    zone: ZoneInfo,
    overdue_days: Sequence[int] = OVERDUE_REMINDER_DAYS,
) -> dict[str, int]:
    """Queue every reminder the policy owes at ``fire_time``; return how many per kind."""
    return {
        "due_soon": queue_due_soon_reminders(session, bill_ids=due_soon_bills(fire_time, days_ahead, zone)),
        "overdue": queue_overdue_reminders(session, fire_time=fire_time, days=overdue_days),
    }
