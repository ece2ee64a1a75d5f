"""Notification outbox: when each queued notification's send job was last enqueued.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_notifications_state_enqueued_at", "notifications", ["state", "enqueued_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_state_enqueued_at", table_name="notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("enqueued_at")
