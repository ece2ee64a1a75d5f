"""Notification claims: the token, time, process and message of the sender that moved a row to sending.

Only the sender holding a row's claim token may move it on; another sender takes a claim over only
when it is stale (older than any send takes, or its message was delivered again). Rows in
``sending`` from before this revision have no claim, and count as stale.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("claim_message_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("claim_message_id")
        batch.drop_column("claimed_by")
        batch.drop_column("claimed_at")
        batch.drop_column("claim_token")
