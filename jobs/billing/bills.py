"""Changes of a bill's status that reports must be able to date: cancelling.

A cancelled bill records when (``cancelled_at``, UTC), so that a report of a period that ended
before counts it as it then was (jobs.billing.reports.figures).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, update
from sqlalchemy.orm import Session

from jobs.billing.models import Bill

#: The statuses a bill can be cancelled from: a paid bill is refunded, not cancelled.
CANCELLABLE = ("pending", "overdue")


def cancel_bills(session: Session, bill_ids: Select, *, at: datetime) -> int:
    """Cancel, as of ``at``, each bill ``bill_ids`` selects that is still pending or overdue; return how many.

    One UPDATE; a bill already cancelled keeps its first ``cancelled_at``, so cancelling twice is harmless.
    """
    statement = (
        update(Bill)
        .where(Bill.id.in_(bill_ids), Bill.status.in_(CANCELLABLE))
        .values(status="cancelled", cancelled_at=at)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount
