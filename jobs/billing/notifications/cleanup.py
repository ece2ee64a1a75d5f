"""Deleting sent notifications past their retention, in short transactions.

Only the e-mails go: the ``reminders_sent`` record of each reminder step stays, so a bill whose
reminder was cleaned up is never owed that step again (jobs.billing.notifications.policy).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from jobs.billing.models import Notification

DEFAULT_RETENTION_DAYS = 90
DEFAULT_CLEANUP_BATCH_SIZE = 5_000


def delete_sent_notifications(
    sessions: sessionmaker[Session], *, sent_before: datetime, batch_size: int = DEFAULT_CLEANUP_BATCH_SIZE
) -> int:
    """Delete ``sent`` notifications sent before ``sent_before``, ``batch_size`` per transaction."""
    deleted = 0
    while True:
        with sessions.begin() as session:
            oldest = (
                select(Notification.id)
                .where(Notification.state == "sent", Notification.sent_at < sent_before)
                .limit(batch_size)
            )
            # Short transactions: a million-row purge must not hold the write lock for minutes.
            count = session.execute(
                delete(Notification)
                .where(Notification.id.in_(oldest))
                .execution_options(synchronize_session=False)
            ).rowcount
        deleted += count
        if count < batch_size:
            return deleted
