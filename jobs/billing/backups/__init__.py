"""Database backups: take one, prove it restores, keep the newest N, restore one on request.

SQLite is copied with the online backup API (``sqlite3.Connection.backup``) and gzipped;
PostgreSQL is dumped with ``pg_dump --format=custom`` (compressed by pg_dump). Both take the row
count of every table *in the same snapshot* as the copy (an open read transaction on SQLite,
an exported snapshot handed to ``pg_dump --snapshot`` on PostgreSQL), so verification can demand
exact equality: the file is restored into a scratch database (a temporary SQLite file, or a
temporary PostgreSQL database created and dropped here) and its counts compared. A backup that
fails verification is marked ``failed``, its file removed, and the error raised.

The ``backups`` table is the catalogue of backup files, so restoring a database must not roll it
back: :func:`restore_backup` saves the catalogue first and writes it back afterwards, so newer
backups stay known (and restorable) after restoring an older one.

The modules: :mod:`.taking`, :mod:`.pruning` and :mod:`.restoring` (the three operations),
:mod:`.catalogue` (the ``backups`` table), :mod:`.sqlite` and :mod:`.postgresql` (each engine's
copy, check and restore). psycopg is optional (the ``postgres`` extra): it is imported only when
a PostgreSQL database is backed up, so SQLite backups work without it.
"""

from jobs.billing.backups.errors import BackupError
from jobs.billing.backups.postgresql import postgres_tool, postgresql_row_counts
from jobs.billing.backups.pruning import prune_backups
from jobs.billing.backups.restoring import restore_backup
from jobs.billing.backups.sqlite import sqlite_row_counts
from jobs.billing.backups.taking import BACKUP_SUFFIXES, take_backup

__all__ = [
    "BACKUP_SUFFIXES",
    "BackupError",
    "postgres_tool",
    "postgresql_row_counts",
    "prune_backups",
    "restore_backup",
    "sqlite_row_counts",
    "take_backup",
]
