"""Reports are unique per kind and the UTC instant their period starts (hourly reports share a date).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("period_starts_at", sa.DateTime(timezone=True), nullable=True))
    _fill_period_starts()
    with op.batch_alter_table("reports") as batch:
        batch.alter_column("period_starts_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_constraint("uq_reports_kind_period_start", type_="unique")
        batch.create_unique_constraint("uq_reports_kind_period_starts_at", ["kind", "period_starts_at"])


def _fill_period_starts() -> None:
    """Existing reports started at local midnight of their period_start date (hourly ones kept
    their hour in their kind, which a later run of the job replaces)."""
    connection = op.get_bind()
    reports = sa.table(
        "reports",
        sa.column("id", sa.Integer),
        sa.column("period_start", sa.Date),
        sa.column("timezone", sa.String),
        sa.column("period_starts_at", sa.DateTime(timezone=True)),
    )
    for report_id, period_start, zone in connection.execute(
        sa.select(reports.c.id, reports.c.period_start, reports.c.timezone)
    ):
        local_midnight = datetime.combine(period_start, time(), tzinfo=ZoneInfo(zone))
        connection.execute(
            reports.update()
            .where(reports.c.id == report_id)
            .values(period_starts_at=local_midnight.astimezone(UTC))
        )


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_constraint("uq_reports_kind_period_starts_at", type_="unique")
        batch.create_unique_constraint("uq_reports_kind_period_start", ["kind", "period_start"])
        batch.drop_column("period_starts_at")
