"""The reminder policy: which reminder a bill is owed at a fire time, as SQL over the bills table.

A bill is reminded once that it falls due soon (its one step is ``DUE_SOON_STEP``) and, once it is
overdue, on the days of ``OVERDUE_REMINDER_DAYS``. Day *n* of being overdue begins *n − 1* whole days
after the due time, so the day-1 reminder goes out as soon as ``check_pending_bills`` marks the bill
overdue, the day-7 one six days later, and so on. A run that finds a bill past several days it was
not reminded on (the jobs were down) sends only the latest step reached: never two at once, never an
earlier one after a later.

Each step handed to the outbox is recorded in ``reminders_sent`` (see
:func:`jobs.billing.notifications.outbox.create_bill_reminders`), which clean-up never deletes, so a
step goes out once however long ago its e-mail was sent and cleaned up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Select, case, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from jobs.billing.models import Bill
from jobs.billing.notifications.outbox import create_bill_reminders
from jobs.platform.defaults import DEFAULT_OVERDUE_REMINDER_DAYS

#: The days of being overdue on which a bill is reminded, unless JOBDECK_OVERDUE_REMINDER_DAYS
#: says otherwise; ascending, day 1 is the first 24 hours after the due time.
OVERDUE_REMINDER_DAYS: tuple[int, ...] = DEFAULT_OVERDUE_REMINDER_DAYS
#: The one step of the due-soon reminder: a bill is told once that it falls due soon.
DUE_SOON_STEP = 0


def queue_due_soon_reminders(session: Session, *, bill_ids: Select) -> int:
    """Queue the due-soon reminder of each bill ``bill_ids`` selects that never had one; return how many."""
    return create_bill_reminders(session, kind="due_soon", bill_ids=bill_ids, step=DUE_SOON_STEP)


def queue_overdue_reminders(
    session: Session, *, fire_time: datetime, days: Sequence[int] = OVERDUE_REMINDER_DAYS
) -> int:
    """Queue the overdue step each overdue bill has reached at ``fire_time`` and not had; return how many."""
    return create_bill_reminders(
        session,
        kind="overdue",
        bill_ids=bills_overdue_a_step(fire_time, days),
        step=overdue_step(fire_time, days),
    )


def overdue_step(fire_time: datetime, days: Sequence[int] = OVERDUE_REMINDER_DAYS) -> ColumnElement[int]:
    """The latest of ``days`` a bill has reached at ``fire_time``, as SQL on its due time (NULL: none yet)."""
    _check_days(days)
    latest_first = sorted(days, reverse=True)
    return case(*[(Bill.due_at < _due_before(fire_time, day), day) for day in latest_first])


def bills_overdue_a_step(fire_time: datetime, days: Sequence[int] = OVERDUE_REMINDER_DAYS) -> Select:
    """Ids of overdue bills that have reached at least the first of ``days`` at ``fire_time``."""
    _check_days(days)
    first_day_begun = _due_before(fire_time, min(days))
    return select(Bill.id).where(Bill.status == "overdue", Bill.due_at < first_day_begun)


def _due_before(fire_time: datetime, day: int) -> datetime:
    """A bill due before this instant has begun day ``day`` of being overdue at ``fire_time``."""
    return fire_time - timedelta(days=day - 1)


def _check_days(days: Sequence[int]) -> None:
    if not days or any(day < 1 for day in days) or list(days) != sorted(set(days)):
        raise ValueError(f"reminder days must be ascending whole days from 1, got {tuple(days)!r}")
