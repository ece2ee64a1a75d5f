"""``jobdeck db``: migrate, back up and restore the billing database."""

from __future__ import annotations

import json

import click

from api.cli.context import audited, confirm, runtime
from api.cli.inputs import yes_option
from jobs.billing.backups.pruning import prune_backups
from jobs.billing.backups.restoring import restore_backup
from jobs.billing.backups.taking import take_backup
from jobs.platform.database import make_engine, redact_url, upgrade
from jobs.platform.settings import load_settings
from jobs.platform.storage import backup_storage


@click.group("db")
def db_group() -> None:
    """The billing database: migrate, back up, restore."""


@db_group.command("upgrade")
def db_upgrade_command() -> None:
    """Apply every database migration (safe to run again; the Procfile's release step).

    \b
    Example:
      jobdeck db upgrade
    """
    settings = load_settings()
    upgrade(settings.database_url)
    click.echo(f"Database at {redact_url(settings.database_url)} is up to date.")


@db_group.command("backup")
def db_backup_command() -> None:
    """Back the database up now, verify it, and keep the newest JOBDECK_BACKUP_KEEP backups.

    \b
    Example:
      jobdeck db backup
    """
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        summary = take_backup(settings, engine)
        summary["pruned"] = prune_backups(engine, backup_storage(settings), settings.backup_keep)
    finally:
        engine.dispose()
    click.echo(json.dumps(summary, default=str))


@db_group.command("restore")
@click.argument("backup_id", type=int)
@yes_option
def db_restore_command(backup_id: int, yes: bool) -> None:
    """Replace the database's content with backup BACKUP_ID (its checksum is checked first).

    Asks first on a terminal (add --yes in a script); written to the audit log as the operator.

    \b
    Example:
      jobdeck backups
      jobdeck db restore 12
    """
    settings = runtime().settings
    confirm(f"Replace the content of {redact_url(settings.database_url)} with backup {backup_id}?", yes)
    # Written after the restore (the block's end), so the restored audit log keeps the entry.
    with audited("db.restore", str(backup_id)) as action:
        summary = restore_backup(settings, backup_id)
        action.details["created_at"] = str(summary["created_at"])
    click.echo(
        f"Restored backup {summary['backup_id']} (taken {summary['created_at']}) into {summary['database']}."
    )
