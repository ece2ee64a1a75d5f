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
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from glob import glob
from pathlib import Path
from typing import Any, BinaryIO

import psycopg
from psycopg import sql
from sqlalchemy import Engine, delete, insert, select, text, update
from sqlalchemy.engine import URL

from jobs.billing.models import Backup, utc_now
from jobs.platform.database import make_engine, normalise_url, redact_url
from jobs.platform.errors import JobdeckError
from jobs.platform.settings import Settings
from jobs.platform.storage import LocalStorage, backup_storage, delete_files_of, stream_sha256

logger = logging.getLogger(__name__)

BACKUP_SUFFIXES = {"sqlite": ".sqlite3.gz", "postgresql": ".dump"}
#: gzip level for SQLite copies: 6 is zlib's default, most of level 9's gain at a fraction of its time.
DEFAULT_GZIP_LEVEL = 6
#: Where PostgreSQL's client programs live when they are not on PATH (Debian, Ubuntu).
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: Longest tool error message kept in an exception.
MAX_ERROR_CHARS = 500

BACKUPS = Backup.__table__


class BackupError(JobdeckError):
    """Raised when a backup cannot be taken, verified or restored."""


# ---------------------------------------------------------------------------------------------
# Taking a backup


def take_backup(settings: Settings, engine: Engine, *, now: datetime | None = None) -> dict[str, Any]:
    """Back the database up, verify the copy, record it in ``backups``; return the row's summary.

    Raises BackupError (after marking the row ``failed`` and removing the file) when the copy
    cannot be made or does not restore to the same row counts.
    """
    backend = _backend(engine)
    storage = backup_storage(settings)
    backup_id = _insert_backup(engine, backend, now or utc_now())
    stored_name = None
    tables: dict[str, int] = {}
    try:
        with storage.create(BACKUP_SUFFIXES[backend]) as new_file:
            tables = _dump(backend, engine.url, new_file.stream)
        stored_name = new_file.name
        _update_backup(
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
        _update_backup(engine, backup_id, verified=True, state="ready")
    except BaseException:
        logger.exception("Backup %s failed.", backup_id)
        if stored_name is not None:
            storage.delete(stored_name)
        _mark_failed(engine, backup_id, tables)
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
        return _dump_sqlite(_sqlite_path(url), stream)
    return _dump_postgresql(url, stream)


def _verify(backend: str, url: URL, stream: BinaryIO) -> dict[str, int]:
    """Restore the backup into a scratch database and return its row counts."""
    if backend == "sqlite":
        with _decompressed_sqlite(stream) as scratch, closing(sqlite3.connect(scratch)) as connection:
            return sqlite_row_counts(connection)
    with _scratch_postgresql_database(url) as scratch_url:
        _pg_restore(scratch_url, stream, "--exit-on-error")
        with psycopg.connect(_libpq_dsn(scratch_url)) as connection:
            return postgresql_row_counts(connection)


def _count_differences(expected: dict[str, int], found: dict[str, int]) -> str:
    differences = [
        f"{table}: {expected.get(table, 'missing')} at backup, {found.get(table, 'missing')} restored"
        for table in sorted(set(expected) | set(found))
        if expected.get(table) != found.get(table)
    ]
    return "; ".join(differences)


# ---------------------------------------------------------------------------------------------
# Keeping the newest N


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


# ---------------------------------------------------------------------------------------------
# Restoring


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
        catalogue = _read_catalogue(engine)
        # Pooled connections would hold locks or a stale view across the replacement.
        engine.dispose()
        with storage.open(backup.path) as stream:
            if backup.engine == "sqlite":
                _restore_sqlite(stream, _sqlite_path(engine.url))
            else:
                _pg_restore(
                    engine.url, stream, "--clean", "--if-exists", "--single-transaction", "--exit-on-error"
                )
        _write_catalogue(engine, catalogue)
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


def _read_catalogue(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(BACKUPS).order_by(BACKUPS.c.id))]


def _write_catalogue(engine: Engine, catalogue: list[dict[str, Any]]) -> None:
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


# ---------------------------------------------------------------------------------------------
# The backups table


def _insert_backup(engine: Engine, backend: str, now: datetime) -> int:
    with engine.begin() as connection:
        return connection.execute(
            insert(BACKUPS)
            .values(engine=backend, state="running", verified=False, tables={}, created_at=now)
            .returning(BACKUPS.c.id)
        ).scalar_one()


def _update_backup(engine: Engine, backup_id: int, **values: Any) -> None:
    with engine.begin() as connection:
        connection.execute(update(BACKUPS).where(BACKUPS.c.id == backup_id).values(**values))


def _mark_failed(engine: Engine, backup_id: int, tables: dict[str, int]) -> None:
    try:
        _update_backup(engine, backup_id, state="failed", verified=False, path=None, tables=tables)
    except Exception:
        # The database may be what failed; cleanup_expired_data fails stale running backups later.
        logger.exception("Could not mark backup %s failed.", backup_id)


# ---------------------------------------------------------------------------------------------
# SQLite


def _sqlite_path(url: URL) -> Path:
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


def _dump_sqlite(database: Path, stream: BinaryIO) -> dict[str, int]:
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


def _restore_sqlite(stream: BinaryIO, database: Path) -> None:
    with (
        _decompressed_sqlite(stream) as restored,
        closing(sqlite3.connect(restored)) as source,
        closing(sqlite3.connect(database, timeout=30)) as target,
    ):
        # The backup API writes the pages under the target's own locks, so readers never see a torn file.
        source.backup(target)


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_tool(name: str) -> str:
    """The path of a PostgreSQL client program (pg_dump, pg_restore): the newest installed one."""
    candidates = sorted(
        (Path(directory) / name for directory in glob(POSTGRES_BIN_GLOB)),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.parent.name)] or [0],
        reverse=True,
    )
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise BackupError(f"{name} is not installed (looked in {POSTGRES_BIN_GLOB} and on PATH)")


def postgresql_row_counts(connection: psycopg.Connection) -> dict[str, int]:
    """Rows per table outside the system schemas; ``public`` tables by bare name, others as schema.table."""
    tables = connection.execute(
        "SELECT schemaname, tablename FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY schemaname, tablename"
    ).fetchall()
    counts = {}
    for schema, table in tables:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        name = table if schema == "public" else f"{schema}.{table}"
        counts[name] = connection.execute(query).fetchone()[0]
    return counts


def _libpq_dsn(url: URL) -> str:
    """A libpq connection URL (password included: for psycopg only, never for logs or argv)."""
    return normalise_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _tool_environment(url: URL) -> tuple[str, dict[str, str]]:
    """The ``--dbname`` argument (no password: argv is visible to every local user) and the environment."""
    url = normalise_url(url)
    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = str(url.password)
    dbname = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return dbname, environment


def _run_tool(
    url: URL, arguments: list[str], *, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> None:
    """Run a PostgreSQL client program; raise BackupError with its (password-free) message on failure."""
    dbname, environment = _tool_environment(url)
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [*arguments, f"--dbname={dbname}"],
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout is not None else subprocess.DEVNULL,
            stderr=errors,
            env=environment,
        )
        if stdout is not None:
            # Copy through Python so any writable stream works, not only real files.
            shutil.copyfileobj(process.stdout, stdout, 1024 * 1024)
            process.stdout.close()
        returncode = process.wait()
        if returncode != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip()
            if url.password:
                message = message.replace(str(url.password), "***")
            tool = Path(arguments[0]).name
            raise BackupError(
                f"{tool} failed (exit {returncode}) on {redact_url(url)}: {message[:MAX_ERROR_CHARS]}"
            )


def _dump_postgresql(url: URL, stream: BinaryIO) -> dict[str, int]:
    """pg_dump the database into ``stream`` and return the row counts of the same snapshot."""
    with psycopg.connect(_libpq_dsn(url)) as connection:
        # The exported snapshot lives as long as this transaction; pg_dump reads exactly what we counted.
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = connection.execute("SELECT pg_export_snapshot()").fetchone()[0]
        counts = postgresql_row_counts(connection)
        _run_tool(url, [postgres_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}"], stdout=stream)
        connection.rollback()
    return counts


def _pg_restore(url: URL, stream: BinaryIO, *options: str) -> None:
    _run_tool(url, [postgres_tool("pg_restore"), "--no-owner", "--no-privileges", *options], stdin=stream)


@contextmanager
def _scratch_postgresql_database(url: URL) -> Iterator[URL]:
    """A new, empty database on the same server, dropped afterwards."""
    name = f"jobdeck_verify_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq_dsn(url), autocommit=True) as connection:
        try:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as error:
            raise BackupError(
                f"cannot create the scratch database {name} to verify the backup on {redact_url(url)}: "
                f"{str(error).strip()[:MAX_ERROR_CHARS]}"
            ) from None
    try:
        yield normalise_url(url).set(database=name)
    finally:
        with psycopg.connect(_libpq_dsn(url), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
