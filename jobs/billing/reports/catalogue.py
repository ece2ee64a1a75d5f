"""Reading the generated reports: listing, full-text search over their content, their files.

Each report row keeps ``search_text``, the words of its content (kind, period, language and every
value of its figures: customer names, currencies, amounts), written with the row. SQLite searches it
through the FTS5 table ``reports_search`` (kept in step by triggers, migration 0007), PostgreSQL
through a GIN index on ``to_tsvector('simple', search_text)``; both match whole words, all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, literal_column, select, text
from sqlalchemy.orm import Session

from jobs.billing.models import Report
from jobs.platform.errors import BadArguments, NotFound, NotReady

DEFAULT_PAGE_SIZE = 50
#: The files a report is written to, by format: the row's column and the file's media type.
REPORT_FILES = {"csv": ("csv_path", "text/csv"), "html": ("html_path", "text/html")}
MAX_SEARCH_WORDS = 20
#: The full-text table (SQLite; the GIN index on PostgreSQL) that migration 0007 creates in SQL.
SEARCH_TABLE = "reports_search"


@dataclass(frozen=True)
class ReportPage:
    """Reports newest first; pass ``next_cursor`` back for older ones (None at the end)."""

    reports: list[Report]
    next_cursor: int | None


def search_document(kind: str, language: str, timezone: str, data: Any) -> str:
    """The words a report is found by: its kind, language, zone and every value of its data."""
    words = [kind, language, timezone]
    _collect_values(data, words)
    return " ".join(words)


def _collect_values(value: Any, words: list[str]) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _collect_values(item, words)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_values(item, words)
    elif value is not None and not isinstance(value, bool):
        words.append(str(value))


def list_reports(
    session: Session,
    *,
    search: str | None = None,
    kind: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: int | None = None,
) -> ReportPage:
    """Reports newest first (by id), optionally of one kind and matching every word of ``search``."""
    query = select(Report).order_by(Report.id.desc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(Report.id < cursor)
    if kind is not None:
        query = query.where(Report.kind == kind)
    if search and search.strip():
        query = _matching(query, session.get_bind().dialect.name, search)
    rows = list(session.scalars(query))
    return ReportPage(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)


def _matching(query: Select, dialect: str, search: str) -> Select:
    words = search.split()
    if len(words) > MAX_SEARCH_WORDS:
        raise BadArguments(f"a search has at most {MAX_SEARCH_WORDS} words")
    if dialect == "postgresql":
        document = func.to_tsvector(literal_column("'simple'"), Report.search_text)
        return query.where(document.op("@@")(func.plainto_tsquery(literal_column("'simple'"), search)))
    # Each word quoted: FTS5 then reads it as a phrase, never as query syntax (AND, NEAR, *, ...).
    phrase = " ".join('"' + word.replace('"', '""') + '"' for word in words)
    matches = text("SELECT rowid FROM reports_search WHERE reports_search MATCH :phrase").bindparams(
        phrase=phrase
    )
    return query.where(Report.id.in_(matches))


def get_report(session: Session, report_id: int) -> Report:
    """The report ``report_id``; NotFound if there is none."""
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound(f"no report has id {report_id}")
    return report


def report_file(report: Report, file_format: str) -> tuple[Path, str]:
    """The path and media type of the report's ``file_format`` file; NotReady once it is removed."""
    if file_format not in REPORT_FILES:
        raise BadArguments(f"a report file is one of {', '.join(REPORT_FILES)}; got {file_format!r}")
    column, media_type = REPORT_FILES[file_format]
    path = getattr(report, column)
    if not path or not Path(path).is_file():
        raise NotReady(f"the {file_format} file of report {report.id} is no longer kept")
    return Path(path), media_type
