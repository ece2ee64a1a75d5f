"""bills.cancelled_at: when a bill was cancelled, so that a report counts it as of its period.

Bills cancelled before this revision keep NULL: the time is unknown, and the reports count such a
bill as cancelled in every period, exactly as they did, so no stored figure changes when re-run.
No time is made up for them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bills") as batch:
        batch.add_column(sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bills") as batch:
        batch.drop_column("cancelled_at")
