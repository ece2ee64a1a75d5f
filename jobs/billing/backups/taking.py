"""Taking a backup: copy the database, restore the copy into a scratch database, compare the row counts."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from jobs.billing.backups.catalogue import insert_backup, mark_failed, update_backup
from jobs.billing.backups.errors import BackupError
from jobs.billing.backups.postgresql import dump_postgresql, verify_postgresql
from jobs.billing.backups.sqlite import dump_sqlite, sqlite_path, verify_sqlite
from jobs.billing.models import utc_now
from jobs.platform.settings import Settings
from jobs.platform.storage import backup_storage

logger = logging.getLogger(__name__)

BACKUP_SUFFIXES = {"sqlite": ".sqlite3.gz", "postgresql": ".dump"}


def take_backup(settings: Settings, engine: Engine, *, now: datetime | None = None) -> dict[str, Any]:
    """Back the database up, verify the copy, record it in ``backups``; return the row's summary.

    Raises BackupError (after marking the row ``failed`` and removing the file) when the copy
    cannot be made or does not restore to the same row counts.
    """
    backend = _backend(engine)
    storage = backup_storage(settings)
    backup_id = insert_backup(engine, backend, now or utc_now())
    stored_name = None
    tables: dict[str, int] = {}
    try:
        with storage.create(BACKUP_SUFFIXES[backend]) as new_file:
            tables = _dump(backend, engine.url, new_file.stream)
        stored_name = new_file.name
        update_backup(
            engine,
            backup_id,
            path=stored_name,
            size_bytes=new_file.size,
            sha256=new_file.sha256,
            tables=tables,
        )
        with storage.open(stored_name) as stream:
            restored = _verify(backend, engine.url, stream)
        if restored != tables:
            raise BackupError(f"backup {backup_id} did not verify: {_count_differences(tables, restored)}")
        update_backup(engine, backup_id, verified=True, state="ready")
    except BaseException:
        logger.exception("Backup %s failed.", backup_id)
        if stored_name is not None:
            storage.delete(stored_name)
        mark_failed(engine, backup_id, tables)
        raise
    return {
        "backup_id": backup_id,
        "engine": backend,
        "path": stored_name,
        "size_bytes": new_file.size,
        "sha256": new_file.sha256,
        "tables": tables,
        "verified": True,
    }


def _backend(engine: Engine) -> str:
    backend = engine.dialect.name
    if backend not in BACKUP_SUFFIXES:
        raise BackupError(f"cannot back up a {backend} database; jobdeck backs up SQLite and PostgreSQL")
    return backend


def _dump(backend: str, url: URL, stream: BinaryIO) -> dict[str, int]:
    if backend == "sqlite":
        return dump_sqlite(sqlite_path(url), stream)
    return dump_postgresql(url, stream)


def _verify(backend: str, url: URL, stream: BinaryIO) -> dict[str, int]:
    """Restore the backup into a scratch database and return its row counts."""
    if backend == "sqlite":
        return verify_sqlite(stream)
    return verify_postgresql(url, stream)


def _count_differences(expected: dict[str, int], found: dict[str, int]) -> str:
    differences = [
        f"{table}: {expected.get(table, 'missing')} at backup, {found.get(table, 'missing')} restored"
        for table in sorted(set(expected) | set(found))
        if expected.get(table) != found.get(table)
    ]
    return "; ".join(differences)
