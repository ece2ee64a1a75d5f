"""API access and report search: token roles viewer/admin with expiry and one live token per name;
the audit log's source and outcome; the reports' search text and its full-text index.

Tokens made with the old ``reader`` role become ``viewer`` tokens (the same rights). Audit
entries written before this revision are taken as ``ok`` with no source: that is all they said.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jobs.billing.reports.catalogue import search_document

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_NAME_WHERE = sa.text("revoked_at IS NULL")
#: SQLite's full-text table over reports.search_text, kept in step with ``reports`` by triggers.
_FORGET_OLD = (
    "INSERT INTO reports_search(reports_search, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text);"
)
_ADD_NEW = "INSERT INTO reports_search(rowid, search_text) VALUES (new.id, new.search_text);"
SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE reports_search USING fts5(search_text, content='reports', content_rowid='id')",
    f"CREATE TRIGGER reports_search_insert AFTER INSERT ON reports BEGIN {_ADD_NEW} END",
    f"CREATE TRIGGER reports_search_delete AFTER DELETE ON reports BEGIN {_FORGET_OLD} END",
    f"CREATE TRIGGER reports_search_update AFTER UPDATE ON reports BEGIN {_FORGET_OLD} {_ADD_NEW} END",
    "INSERT INTO reports_search(reports_search) VALUES ('rebuild')",
)
POSTGRESQL_SEARCH = ("CREATE INDEX reports_search ON reports USING gin (to_tsvector('simple', search_text))",)


def upgrade() -> None:
    _upgrade_tokens()
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("source", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(length=16), nullable=False, server_default="ok"))
    with op.batch_alter_table("audit_log") as batch:
        batch.alter_column("outcome", server_default=None)
        batch.create_check_constraint("outcome", "outcome IN ('ok', 'refused', 'failed')")
    _upgrade_reports()


def _upgrade_tokens() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint(op.f("ck_api_tokens_role"), type_="check")
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE api_tokens SET role = 'viewer' WHERE role = 'reader'")
    with op.batch_alter_table("api_tokens") as batch:
        batch.create_check_constraint("role", "role IN ('viewer', 'admin')")
    op.create_index(
        "uq_api_tokens_live_name",
        "api_tokens",
        ["name"],
        unique=True,
        sqlite_where=LIVE_NAME_WHERE,
        postgresql_where=LIVE_NAME_WHERE,
    )


def _upgrade_reports() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("reports") as batch:
        batch.alter_column("search_text", server_default=None)
    connection = op.get_bind()
    reports = sa.table(
        "reports",
        sa.column("id"),
        sa.column("kind"),
        sa.column("language"),
        sa.column("timezone"),
        sa.column("data", sa.JSON()),
        sa.column("search_text"),
    )
    for row in connection.execute(sa.select(reports)).mappings().all():
        text_value = search_document(row["kind"], row["language"], row["timezone"], row["data"])
        connection.execute(reports.update().where(reports.c.id == row["id"]).values(search_text=text_value))
    for statement in SQLITE_SEARCH if connection.dialect.name == "sqlite" else POSTGRESQL_SEARCH:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER reports_search_{trigger}")
        op.execute("DROP TABLE reports_search")
    else:
        op.execute("DROP INDEX reports_search")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("search_text")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint(op.f("ck_audit_log_outcome"), type_="check")
        batch.drop_column("outcome")
        batch.drop_column("source")
    op.drop_index("uq_api_tokens_live_name", table_name="api_tokens")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint(op.f("ck_api_tokens_role"), type_="check")
        batch.drop_column("expires_at")
    op.execute("UPDATE api_tokens SET role = 'reader' WHERE role = 'viewer'")
    with op.batch_alter_table("api_tokens") as batch:
        batch.create_check_constraint("role", "role IN ('reader', 'admin')")
