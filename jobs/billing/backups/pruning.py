"""Keeping the newest N backups: older files go first, then their rows."""

from __future__ import annotations

from sqlalchemy import Engine, delete, select

from jobs.billing.backups.catalogue import BACKUPS
from jobs.platform.storage import LocalStorage, delete_files_of


def prune_backups(engine: Engine, storage: LocalStorage, keep: int) -> list[int]:
    """Keep the newest ``keep`` verified backups (and ``keep`` failed rows for diagnosis); remove the rest.

    Files go first, then rows, so a crash in between leaves a row without a file rather than an
    unknown file. Returns the removed backup ids; running twice removes nothing more.
    """
    removed: list[int] = []
    with engine.connect() as connection:
        for state in ("ready", "failed"):
            rows = connection.execute(
                select(BACKUPS.c.id, BACKUPS.c.path)
                .where(BACKUPS.c.state == state)
                .order_by(BACKUPS.c.created_at.desc(), BACKUPS.c.id.desc())
                .offset(keep)
            ).all()
            removed.extend(_remove_backups(engine, storage, rows))
    return sorted(removed)


def _remove_backups(engine: Engine, storage: LocalStorage, rows: list) -> list[int]:
    ids = delete_files_of(storage, rows)
    if ids:
        with engine.begin() as connection:
            connection.execute(delete(BACKUPS).where(BACKUPS.c.id.in_(ids)))
    return ids
