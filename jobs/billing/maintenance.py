"""The maintenance jobs: database backups, clearing the web cache, removing expired files.

All three are safe to run twice: a second backup is another verified backup (retention trims
the surplus), and the clean-ups find nothing left to remove.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
from sqlalchemy import Engine, or_, select, update

from jobs.billing.backups.pruning import prune_backups
from jobs.billing.backups.taking import take_backup
from jobs.billing.models import Backup, Export, Report
from jobs.billing.periods import parse_fire_time
from jobs.platform import queues
from jobs.platform.cache import delete_cache_entries
from jobs.platform.context import current
from jobs.platform.errors import PermanentError
from jobs.platform.storage import LocalStorage, backup_storage, delete_files_of, export_storage

logger = logging.getLogger(__name__)

EXPORTS = Export.__table__
BACKUPS = Backup.__table__
REPORTS = Report.__table__


@dramatiq.actor(queue_name=queues.DEFAULT)
def backup_database() -> dict[str, Any]:
    """Back the database up, verify it by restoring into a scratch database, keep the newest N."""
    runtime = current()
    summary = take_backup(runtime.settings, runtime.engine)
    summary["pruned"] = prune_backups(
        runtime.engine, backup_storage(runtime.settings), runtime.settings.backup_keep
    )
    return summary


@dramatiq.actor(queue_name=queues.DEFAULT)
def cleanup_cache(pattern: str = "*") -> int:
    """Remove the web cache's entries matching ``pattern`` (a glob after the prefix); return how many."""
    try:
        return delete_cache_entries(current().broker.client, pattern)
    except ValueError as error:
        raise PermanentError(str(error)) from None


@dramatiq.actor(queue_name=queues.DEFAULT)
def cleanup_expired_data(fire_time: str | None = None) -> dict[str, Any]:
    """Remove expired exports, backups beyond retention and old report files; return what went.

    ``fire_time`` (ISO 8601, UTC when it has no offset) is "now" for the expiry decisions, so a
    late or repeated run decides as the scheduled one would have.
    """
    runtime = current()
    settings = runtime.settings
    now = parse_fire_time(fire_time)
    exports, backups = export_storage(settings), backup_storage(settings)
    # A run older than the hard time limit cannot still be going: its worker died.
    stale_before = now - timedelta(seconds=settings.time_limit)
    stale_exports = fail_stale_runs(runtime.engine, EXPORTS, exports, stale_before)
    stale_backups = fail_stale_runs(runtime.engine, BACKUPS, backups, stale_before)
    expired = expire_exports(runtime.engine, exports, now)
    report_cutoff = now - timedelta(days=settings.report_file_ttl_days)
    reports = remove_report_files(runtime.engine, settings.report_dir, report_cutoff)
    return {
        "exports_expired": expired,
        "stale_exports_failed": stale_exports,
        "stale_backups_failed": stale_backups,
        "backups_removed": prune_backups(runtime.engine, backups, settings.backup_keep),
        "report_files_deleted": reports["deleted"],
        "reports_cleared": reports["reports"],
        "partial_files_removed": exports.remove_stale_partials(settings.time_limit)
        + backups.remove_stale_partials(settings.time_limit),
        "now": now.isoformat(),
    }


def expire_exports(engine: Engine, storage: LocalStorage, now: datetime) -> list[int]:
    """Delete the files of exports past their expiry and mark them ``expired``; return their ids."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(EXPORTS.c.id, EXPORTS.c.path).where(
                EXPORTS.c.expires_at <= now, EXPORTS.c.state != "expired"
            )
        ).all()
    ids = delete_files_of(storage, rows)
    if ids:
        with engine.begin() as connection:
            connection.execute(
                update(EXPORTS).where(EXPORTS.c.id.in_(ids)).values(state="expired", path=None)
            )
    return ids


def fail_stale_runs(engine: Engine, table: Any, storage: LocalStorage, started_before: datetime) -> list[int]:
    """Mark ``running`` exports or backups created before ``started_before`` failed; delete their files."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.id, table.c.path).where(
                table.c.state == "running", table.c.created_at < started_before
            )
        ).all()
    ids = delete_files_of(storage, rows)
    if ids:
        logger.warning("Marking %d %s left running by a dead worker as failed: %s", len(ids), table.name, ids)
        with engine.begin() as connection:
            connection.execute(
                update(table)
                .where(table.c.id.in_(ids), table.c.state == "running")
                .values(state="failed", path=None)
            )
    return ids


def remove_report_files(engine: Engine, report_dir: Path, created_before: datetime) -> dict[str, int]:
    """Delete the CSV and HTML files of reports created before ``created_before`` and clear their paths.

    The report's figures stay in the database. Only files inside ``report_dir`` are deleted: a path
    pointing elsewhere is left alone (file and column), whatever the row says.
    """
    report_dir = Path(report_dir).resolve()
    with engine.connect() as connection:
        rows = connection.execute(
            select(REPORTS.c.id, REPORTS.c.csv_path, REPORTS.c.html_path).where(
                REPORTS.c.created_at < created_before,
                or_(REPORTS.c.csv_path.is_not(None), REPORTS.c.html_path.is_not(None)),
            )
        ).all()
    deleted = cleared = 0
    for row in rows:
        changes = {}
        for column in ("csv_path", "html_path"):
            stored = getattr(row, column)
            if stored is None:
                continue
            path = _inside(report_dir, stored)
            if path is None:
                logger.warning(
                    "Report %s's %s %r is outside %s; left alone.", row.id, column, stored, report_dir
                )
                continue
            if path.is_file():
                path.unlink()
                deleted += 1
            changes[column] = None
        if changes:
            with engine.begin() as connection:
                connection.execute(update(REPORTS).where(REPORTS.c.id == row.id).values(**changes))
            cleared += 1
    return {"deleted": deleted, "reports": cleared}


def _inside(directory: Path, stored: str) -> Path | None:
    path = Path(stored)
    path = (path if path.is_absolute() else directory / path).resolve()
    return path if path.is_relative_to(directory) else None
