"""Storing a report row: one per (kind, period), replaced when the period is generated again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from jobs.billing.models import Report, utc_now
from jobs.billing.periods import Period
from jobs.billing.reports.catalogue import search_document
from jobs.platform.database import upsert_insert


def store_report(
    session: Session,
    *,
    kind: str,
    period: Period,
    language: str,
    data: dict[str, Any],
    csv_path: str | None = None,
    html_path: str | None = None,
    expires_at: datetime | None = None,
) -> int:
    """Insert or replace the report of ``kind`` for ``period`` in one statement; return its id."""
    values = {
        "kind": kind,
        "period_starts_at": period.start_utc,
        "period_start": period.start_date,
        "period_end": period.end_date,
        "timezone": period.zone.key,
        "language": language,
        "data": data,
        "csv_path": csv_path,
        "html_path": html_path,
        "created_at": utc_now(),
        "expires_at": expires_at,
        "search_text": search_document(kind, language, period.zone.key, data),
    }
    statement = upsert_insert(session, Report).values(**values)
    unique = ("kind", "period_starts_at")
    replaced = {name: statement.excluded[name] for name in values if name not in unique}
    statement = statement.on_conflict_do_update(index_elements=list(unique), set_=replaced)
    return session.scalar(statement.returning(Report.id))
