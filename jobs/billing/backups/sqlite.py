"""SQLite backups: a gzipped copy through the online backup API, with the row counts of the same snapshot."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.engine import URL

from jobs.billing.backups.errors import BackupError
from jobs.platform.database import redact_url

#: gzip level for SQLite copies: 6 is zlib's default, most of level 9's gain at a fraction of its time.
DEFAULT_GZIP_LEVEL = 6


def sqlite_path(url: URL) -> Path:
    """The database file of a SQLite URL; BackupError for an in-memory or URI database."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise BackupError(
            f"cannot back up or restore the SQLite database {redact_url(url)}: it is not a file"
        )
    return Path(database).expanduser().resolve()


def sqlite_row_counts(connection: sqlite3.Connection) -> dict[str, int]:
    """Rows per table (SQLite's own ``sqlite_*`` tables left out)."""
    names = [
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    return {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def dump_sqlite(database: Path, stream: BinaryIO) -> dict[str, int]:
    """Copy the database with the online backup API and gzip it into ``stream``; return its counts."""
    if not database.is_file():
        raise BackupError(f"the SQLite database {database} does not exist")
    with tempfile.TemporaryDirectory(prefix="jobdeck-backup-") as scratch:
        snapshot = Path(scratch) / "snapshot.sqlite3"
        with closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as source:
            # One read transaction around the counts and the copy: both see the same snapshot.
            source.execute("BEGIN")
            counts = sqlite_row_counts(source)
            with closing(sqlite3.connect(snapshot)) as target:
                source.backup(target)
            source.execute("COMMIT")
        with (
            snapshot.open("rb") as raw,
            gzip.GzipFile(fileobj=stream, mode="wb", compresslevel=DEFAULT_GZIP_LEVEL) as packed,
        ):
            shutil.copyfileobj(raw, packed, 1024 * 1024)
    return counts


def verify_sqlite(stream: BinaryIO) -> dict[str, int]:
    """Unpack the backup into a scratch file and return its row counts."""
    with _decompressed_sqlite(stream) as scratch, closing(sqlite3.connect(scratch)) as connection:
        return sqlite_row_counts(connection)


def restore_sqlite(stream: BinaryIO, database: Path) -> None:
    """Replace the content of ``database`` with the backup's, through the backup API."""
    with (
        _decompressed_sqlite(stream) as restored,
        closing(sqlite3.connect(restored)) as source,
        closing(sqlite3.connect(database, timeout=30)) as target,
    ):
        # The backup API writes the pages under the target's own locks, so readers never see a torn file.
        source.backup(target)


@contextmanager
def _decompressed_sqlite(stream: BinaryIO) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="jobdeck-restore-") as scratch:
        path = Path(scratch) / "restored.sqlite3"
        try:
            with gzip.GzipFile(fileobj=stream, mode="rb") as packed, path.open("wb") as raw:
                shutil.copyfileobj(packed, raw, 1024 * 1024)
        except (OSError, EOFError) as error:
            raise BackupError(f"the backup file is not a readable gzip file: {error}") from None
        yield path
