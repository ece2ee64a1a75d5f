"""Reading the export runs and opening their files for download."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobs.billing.models import Export, utc_now
from jobs.platform.errors import NotFound, NotReady
from jobs.platform.storage import Storage

DEFAULT_PAGE_SIZE = 50
#: The media type of each export format (jobs.billing.exports.writers).
MEDIA_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class ExportPage:
    """Export runs newest first; pass ``next_cursor`` back for older ones (None at the end)."""

    exports: list[Export]
    next_cursor: int | None


@dataclass(frozen=True)
class ExportFile:
    """An export's file, open for reading: stream it, then close it."""

    stream: BinaryIO
    download_name: str
    media_type: str
    size: int


def list_exports(
    session: Session, *, state: str | None = None, limit: int = DEFAULT_PAGE_SIZE, cursor: int | None = None
) -> ExportPage:
    """Export runs newest first (by id), optionally in one state."""
    query = select(Export).order_by(Export.id.desc()).limit(limit + 1)
    if cursor is not None:
        query = query.where(Export.id < cursor)
    if state is not None:
        query = query.where(Export.state == state)
    rows = list(session.scalars(query))
    return ExportPage(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)


def open_export_file(session: Session, storage: Storage, export_id: int) -> ExportFile:
    """Open the file of export ``export_id``; NotFound, or NotReady unless it is ready and kept."""
    export = session.get(Export, export_id)
    if export is None:
        raise NotFound(f"no export has id {export_id}")
    expired = export.expires_at is not None and export.expires_at <= utc_now()
    if export.state != "ready" or expired or not export.path or not storage.exists(export.path):
        state = "expired" if expired or export.state == "ready" else export.state
        raise NotReady(f"export {export_id} cannot be downloaded: it is {state}")
    return ExportFile(
        stream=storage.open(export.path),
        download_name=f"{export.dataset}-{export.id}.{export.format}",
        media_type=MEDIA_TYPES.get(export.format, "application/octet-stream"),
        size=storage.size(export.path),
    )
