"""The finance jobs (queue ``finance``): marking bills overdue with their reminders, and monthly revenue.

Both work set-based in SQL on integer minor units and are safe to run twice: what they owe is derived
from database state each run, and what they store is an upsert. Each runs under its one-at-a-time
lock (``jobs.platform.locks``): a run that meets a live one raises LockHeld and is retried later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from periodiq import cron
from sqlalchemy import update
from sqlalchemy.orm import Session

from jobs.billing.models import Bill
from jobs.billing.money import from_minor
from jobs.billing.notifications.outbox import dispatch_queued_notifications
from jobs.billing.notifications.policy import queue_overdue_reminders
from jobs.billing.periods import Period, month_period, parse_fire_time, previous_period
from jobs.billing.reports.figures import paid_by_currency
from jobs.billing.reports.store import store_report
from jobs.platform import queues
from jobs.platform.context import current
from jobs.platform.errors import PermanentError
from jobs.platform.locks import exclusive

OVERDUE = "overdue"
MONTHLY_REVENUE = "monthly_revenue"
#: Notification ids per send_notification_batch message.
DEFAULT_REMINDER_BATCH = 500


class FinanceError(PermanentError):
    """Raised when a finance job is given arguments that can never work (e.g. a month without a year)."""


# ---------------------------------------------------------------------------------------------
# check_pending_bills


# Every minute, no catch-up: a missed minute is covered by the next one (the check is cumulative).
@dramatiq.actor(queue_name=queues.FINANCE, periodic=cron("* * * * *"), schedule_window=0)
def check_pending_bills(fire_time: str | None = None) -> dict[str, Any]:
    """Mark pending bills past due at the fire time as overdue; queue the reminder step each one is owed."""
    fired = parse_fire_time(fire_time)
    context = current()
    with exclusive("check_pending_bills") as lock, context.sessions() as session:
        marked = mark_overdue_bills(session, as_of=fired)
        created = queue_overdue_reminders(
            session, fire_time=fired, days=context.settings.overdue_reminder_days
        )
        lock.check()
        session.commit()
        # Past this commit a crash loses nothing: the reminders are queued rows the next
        # run's dispatch finds (the outbox), and the steps owed are derived again.
        enqueued = enqueue_queued_reminders(session)
        session.commit()
    return {
        "fire_time": fired.isoformat(),
        "marked_overdue": marked,
        "reminders_created": created,
        "reminders_enqueued": enqueued,
    }


def mark_overdue_bills(session: Session, *, as_of: datetime) -> int:
    """Turn every pending bill due before ``as_of`` into overdue, in one statement; return how many."""
    statement = (
        update(Bill)
        .where(Bill.status == "pending", Bill.due_at < as_of)  # the (status, due_at) index
        .values(status=OVERDUE)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount


def enqueue_queued_reminders(session: Session) -> int:
    """Send the queued notifications' e-mail jobs in batches (the outbox); return how many ids went out."""
    return dispatch_queued_notifications(session, batch_size=DEFAULT_REMINDER_BATCH)


# ---------------------------------------------------------------------------------------------
# calculate_monthly_revenue


@dramatiq.actor(queue_name=queues.FINANCE)
def calculate_monthly_revenue(
    year: int | None = None, month: int | None = None, fire_time: str | None = None
) -> dict[str, Any]:
    """Total the payments of one local month per currency and store them as the month's revenue report.

    The month is ``year``-``month``, or by default the month before the fire time's month.
    """
    settings = current().settings
    period = revenue_month(year, month, fire_time, settings.timezone)
    with exclusive(f"calculate_monthly_revenue:{period.label}") as lock, current().sessions() as session:
        totals = paid_by_currency(session, period.start_utc, period.end_utc)
        data = revenue_report_data(period, totals)
        report_id = store_report(
            session, kind=MONTHLY_REVENUE, period=period, language=settings.report_language, data=data
        )
        lock.check()
        session.commit()
    return {
        "report_id": report_id,
        "period_start": period.start_date.isoformat(),
        "period_end": period.end_date.isoformat(),
        "timezone": period.zone.key,
        "payments": sum(count for count, _ in totals.values()),
        "revenue": data["revenue"],
    }


def revenue_month(year: int | None, month: int | None, fire_time: str | None, zone: ZoneInfo) -> Period:
    """The month asked for, or the month before the fire time's month."""
    if year is None and month is None:
        return previous_period("month", parse_fire_time(fire_time), zone)
    if year is None or month is None:
        raise FinanceError("give both year and month, or neither")
    try:
        return month_period(int(year), int(month), zone)
    except (TypeError, ValueError) as error:
        raise FinanceError(f"no such month: {year!r}-{month!r} ({error})") from None


def revenue_report_data(period: Period, totals: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """The JSON stored in the revenue report: totals as exact decimal strings, and the counts."""
    return {
        "period": {
            "start": period.start_local.isoformat(),
            "end": period.end_local.isoformat(),
            "timezone": period.zone.key,
        },
        "revenue": {currency: str(from_minor(total, currency)) for currency, (_, total) in totals.items()},
        "payments": {currency: count for currency, (count, _) in totals.items()},
    }
