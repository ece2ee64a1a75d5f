"""The ``backups`` table, the catalogue of backup files: adding, updating, saving and writing back rows."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, text, update

from jobs.billing.models import Backup

logger = logging.getLogger(__name__)

BACKUPS = Backup.__table__


def insert_backup(engine: Engine, backend: str, now: datetime) -> int:
    """Add a ``running`` row for a backup of a ``backend`` database; return its id."""
    with engine.begin() as connection:
        return connection.execute(
            insert(BACKUPS)
            .values(engine=backend, state="running", verified=False, tables={}, created_at=now)
            .returning(BACKUPS.c.id)
        ).scalar_one()


def update_backup(engine: Engine, backup_id: int, **values: Any) -> None:
    """Set ``values`` on the row of backup ``backup_id``, in its own transaction."""
    with engine.begin() as connection:
        connection.execute(update(BACKUPS).where(BACKUPS.c.id == backup_id).values(**values))


def mark_failed(engine: Engine, backup_id: int, tables: dict[str, int]) -> None:
    """Mark the backup ``failed`` without a file; log (never raise) if the database refuses."""
    try:
        update_backup(engine, backup_id, state="failed", verified=False, path=None, tables=tables)
    except Exception:
        # The database may be what failed; cleanup_expired_data fails stale running backups later.
        logger.exception("Could not mark backup %s failed.", backup_id)


def read_catalogue(engine: Engine) -> list[dict[str, Any]]:
    """Every row of the catalogue, in id order."""
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(BACKUPS).order_by(BACKUPS.c.id))]


def write_catalogue(engine: Engine, catalogue: list[dict[str, Any]]) -> None:
    """Replace the catalogue with ``catalogue`` (as :func:`read_catalogue` returned it)."""
    with engine.begin() as connection:
        connection.execute(delete(BACKUPS))
        if catalogue:
            connection.execute(insert(BACKUPS), catalogue)
        if connection.dialect.name == "postgresql":
            # Explicit ids do not move the sequence; the next backup row would collide without this.
            connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('backups', 'id'), "
                    "COALESCE((SELECT MAX(id) FROM backups), 0) + 1, false)"
                )
            )
