"""One export run: its ``exports`` row, the file written through the storage, progress reports."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from sqlalchemy import Engine, insert, update

from jobs.billing.exports.formatting import row_formatter
from jobs.billing.exports.queries import count_rows, stream_rows
from jobs.billing.exports.request import ExportRequest
from jobs.billing.exports.writers import WRITERS
from jobs.billing.models import Export, utc_now
from jobs.platform.progress import report_progress
from jobs.platform.storage import Storage

logger = logging.getLogger(__name__)

#: Rows between two progress reports.
PROGRESS_EVERY_ROWS = 100_000


def run_export(
    engine: Engine,
    storage: Storage,
    request: ExportRequest,
    *,
    ttl_days: float,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write one export file and its ``exports`` row; return the row's summary.

    The row is ``running`` while the file is written, ``ready`` with rows, size, sha256 and expiry
    when it is complete, and ``failed`` (no file) if anything goes wrong; the error is re-raised.
    """
    now = now or utc_now()
    expires_at = now + timedelta(days=ttl_days)
    export_id = _insert_export(engine, request, now, expires_at)
    stored_name = None
    try:
        total = count_rows(engine, request)
        with storage.create("." + request.format) as new_file:
            rows = _write_rows(engine, request, new_file.stream, _progress_reporter(total))
        stored_name = new_file.name
        _update_export(
            engine,
            export_id,
            state="ready",
            path=new_file.name,
            rows=rows,
            size_bytes=new_file.size,
            sha256=new_file.sha256,
        )
    except BaseException:
        logger.exception("Export %s of %s failed.", export_id, request.dataset.name)
        if stored_name is not None:
            storage.delete(stored_name)
        _mark_failed(engine, export_id)
        raise
    return {
        "export_id": export_id,
        "dataset": request.dataset.name,
        "format": request.format,
        "filters": request.filters,
        "rows": rows,
        "size_bytes": new_file.size,
        "sha256": new_file.sha256,
        "path": new_file.name,
        "expires_at": expires_at.isoformat(),
    }


def _write_rows(
    engine: Engine, request: ExportRequest, stream: BinaryIO, on_rows: Callable[[int], None]
) -> int:
    """Stream the export's rows into ``stream`` with the writer of its format; return how many."""
    # SQLite hands times back as text; reshaping it in SQL is much cheaper than parsing it in Python.
    format_in_sql = engine.dialect.name == "sqlite"
    csv_lines = format_in_sql and request.format == "csv"
    return WRITERS[request.format](
        stream,
        request.dataset,
        stream_rows(engine, request, format_in_sql=format_in_sql, csv_lines=csv_lines),
        None if format_in_sql else row_formatter(request.dataset),
        on_rows,
    )


def _progress_reporter(total: int) -> Callable[[int], None]:
    next_report = PROGRESS_EVERY_ROWS

    def on_rows(rows: int) -> None:
        nonlocal next_report
        if rows >= next_report and total:
            report_progress(100 * rows / total, f"{rows:,} of {total:,} rows")
            next_report = rows + PROGRESS_EVERY_ROWS

    return on_rows


def _insert_export(engine: Engine, request: ExportRequest, now: datetime, expires_at: datetime) -> int:
    with engine.begin() as connection:
        return connection.execute(
            insert(Export.__table__)
            .values(
                dataset=request.dataset.name,
                format=request.format,
                filters=request.filters,
                state="running",
                created_at=now,
                expires_at=expires_at,
            )
            .returning(Export.__table__.c.id)
        ).scalar_one()


def _update_export(engine: Engine, export_id: int, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(Export.__table__).where(Export.__table__.c.id == export_id).values(**values)
        )


def _mark_failed(engine: Engine, export_id: int) -> None:
    try:
        _update_export(engine, export_id, state="failed", path=None)
    except Exception:
        # The database may be what failed; the clean-up job fails stale running exports later.
        logger.exception("Could not mark export %s failed.", export_id)
