"""Restoring a backup into the configured database, keeping the ``backups`` catalogue as it was."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, select

from jobs.billing.backups.catalogue import BACKUPS, read_catalogue, write_catalogue
from jobs.billing.backups.errors import BackupError
from jobs.billing.backups.postgresql import restore_postgresql
from jobs.billing.backups.sqlite import restore_sqlite, sqlite_path
from jobs.platform.database import make_engine, redact_url
from jobs.platform.settings import Settings
from jobs.platform.storage import LocalStorage, backup_storage, stream_sha256

logger = logging.getLogger(__name__)


def restore_backup(settings: Settings, backup_id: int) -> dict[str, Any]:
    """Restore backup ``backup_id`` into the configured database, after checking its checksum.

    SQLite: the database file's content is replaced through the backup API (other processes'
    connections stay valid). PostgreSQL: ``pg_restore --clean --if-exists --single-transaction``,
    which replaces every object in the dump and leaves objects created since then in place.
    The ``backups`` catalogue is kept as it was before the restore.
    """
    engine = make_engine(settings.database_url)
    try:
        backup = _restorable_backup(engine, backup_id)
        storage = backup_storage(settings)
        _check_file(storage, backup)
        catalogue = read_catalogue(engine)
        # Pooled connections would hold locks or a stale view across the replacement.
        engine.dispose()
        with storage.open(backup.path) as stream:
            if backup.engine == "sqlite":
                restore_sqlite(stream, sqlite_path(engine.url))
            else:
                restore_postgresql(engine.url, stream)
        write_catalogue(engine, catalogue)
    finally:
        engine.dispose()
    logger.info("Restored backup %s into %s.", backup_id, redact_url(engine.url))
    return {
        "backup_id": backup.id,
        "engine": backup.engine,
        "created_at": backup.created_at.isoformat(),
        "tables": backup.tables,
        "database": redact_url(engine.url),
    }


def _restorable_backup(engine: Engine, backup_id: int) -> Any:
    with engine.connect() as connection:
        backup = connection.execute(select(BACKUPS).where(BACKUPS.c.id == backup_id)).first()
    if backup is None:
        raise BackupError(f"there is no backup with id {backup_id}")
    if backup.state != "ready" or not backup.verified or not backup.path:
        raise BackupError(
            f"backup {backup_id} is {backup.state}, not a verified backup; it cannot be restored"
        )
    if backup.engine != engine.dialect.name:
        raise BackupError(
            f"backup {backup_id} is a {backup.engine} backup; "
            f"the configured database is {engine.dialect.name}"
        )
    return backup


def _check_file(storage: LocalStorage, backup: Any) -> None:
    try:
        with storage.open(backup.path) as stream:
            found = stream_sha256(stream)
    except FileNotFoundError:
        raise BackupError(f"the file of backup {backup.id} ({storage.url(backup.path)}) is missing") from None
    if found != backup.sha256:
        raise BackupError(
            f"the file of backup {backup.id} does not match its checksum "
            f"(recorded sha256 {backup.sha256[:12]}..., file has {found[:12]}...); refusing to restore it"
        )
