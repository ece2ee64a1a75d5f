"""reminders_sent: each reminder-policy step handed to the outbox, kept when old notifications are deleted.

Bills reminded before this revision count as reminded up to the step they have reached now: a bill
with a due-soon notification has had its due-soon step, and every overdue bill has had the overdue
step of its age (the jobs of the old policy reminded each overdue bill every day), so the upgrade
sends no burst of e-mail and each bill's next step follows on its day. The days are the policy's of
this revision (1, 7, 14, 30), written here so that the migration never changes with the code.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OVERDUE_REMINDER_DAYS = (1, 7, 14, 30)


def upgrade() -> None:
    op.create_table(
        "reminders_sent",
        sa.Column("bill_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('due_soon', 'overdue')", name=op.f("ck_reminders_sent_kind")),
        sa.ForeignKeyConstraint(["bill_id"], ["bills.id"], name=op.f("fk_reminders_sent_bill_id_bills")),
        sa.PrimaryKeyConstraint("bill_id", "kind", "step", name=op.f("pk_reminders_sent")),
    )
    _record_reminders_already_sent()


def _record_reminders_already_sent() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)
    # SQLite keeps UTC wall time without an offset (jobdeck's UTCDateTime); PostgreSQL an aware time.
    stored = now.replace(tzinfo=None) if connection.dialect.name == "sqlite" else now
    bills = sa.table(
        "bills", sa.column("id", sa.Integer), sa.column("status"), sa.column("due_at", sa.DateTime)
    )
    notifications = sa.table("notifications", sa.column("bill_id", sa.Integer), sa.column("kind"))
    sent = sa.table(
        "reminders_sent", sa.column("bill_id"), sa.column("kind"), sa.column("step"), sa.column("created_at")
    )
    columns = ["bill_id", "kind", "step", "created_at"]
    due_soon = (
        sa.select(notifications.c.bill_id, sa.literal("due_soon"), sa.literal(0), sa.literal(stored))
        .where(notifications.c.kind == "due_soon", notifications.c.bill_id.is_not(None))
        .distinct()
    )
    reached = sa.case(
        *[
            (bills.c.due_at < stored - timedelta(days=day - 1), day)
            for day in sorted(OVERDUE_REMINDER_DAYS, reverse=True)
        ],
        else_=OVERDUE_REMINDER_DAYS[0],
    )
    overdue = sa.select(bills.c.id, sa.literal("overdue"), reached, sa.literal(stored)).where(
        bills.c.status == "overdue"
    )
    connection.execute(sent.insert().from_select(columns, due_soon))
    connection.execute(sent.insert().from_select(columns, overdue))


def downgrade() -> None:
    op.drop_table("reminders_sent")
