"""The bill reminder job (queue ``finance``): due-soon and overdue e-mails, once per bill per local day."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from sqlalchemy import Select, select

from jobs.billing.models import Bill
from jobs.billing.notifications.outbox import create_bill_reminders, dispatch_queued_notifications
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


def overdue_bills() -> Select:
    """Bills already marked overdue (check_pending_bills marks them)."""
    return select(Bill.id).where(Bill.status == "overdue")


@dramatiq.actor(queue_name=queues.FINANCE)
def send_bill_reminders(days_ahead: int = DEFAULT_DAYS_AHEAD, fire_time: str | None = None) -> dict[str, Any]:
    """Queue a due-soon and an overdue reminder per bill for the fire time's local day, then send them.

    The dedup key (bill, kind, local date) makes a second run the same day create nothing, and
    notifications already sent or being sent are not enqueued again.
    """
    if days_ahead < 0:
        raise PermanentError(f"days_ahead must not be negative, got {days_ahead}")
    runtime = current()
    fired_at = parse_fire_time(fire_time)
    local_date: date = fired_at.astimezone(runtime.settings.timezone).date()
    selections = {
        "due_soon": due_soon_bills(fired_at, days_ahead, runtime.settings.timezone),
        "overdue": overdue_bills(),
    }
    with runtime.sessions.begin() as session:
        created = {
            kind: create_bill_reminders(session, kind=kind, bill_ids=bill_ids, local_date=local_date)
            for kind, bill_ids in selections.items()
        }
    # Its own transaction, committed before the messages go out: also picks up rows a crashed
    # earlier run created but never enqueued.
    with runtime.sessions.begin() as session:
        enqueued = dispatch_queued_notifications(session)
    return {"local_date": local_date.isoformat(), "created": created, "enqueued": enqueued}
