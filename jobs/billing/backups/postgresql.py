"""PostgreSQL backups: ``pg_dump`` of an exported snapshot, checked by ``pg_restore`` into a scratch database.

psycopg comes with the ``postgres`` extra. It is imported inside the functions that connect, so
a worker installed without it still imports this module (and backs up SQLite); backing up
PostgreSQL without it raises MissingExtra naming the extra to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import types
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy.engine import URL

from jobs.billing.backups.errors import BackupError
from jobs.platform.database import normalise_url, redact_url
from jobs.platform.extras import optional_import

if TYPE_CHECKING:
    import psycopg

#: Where PostgreSQL's client programs live when they are not on PATH (Debian, Ubuntu).
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: Longest tool error message kept in an exception.
MAX_ERROR_CHARS = 500
FEATURE = "Backing up PostgreSQL"


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
    sql = _psycopg_sql()
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


def dump_postgresql(url: URL, stream: BinaryIO) -> dict[str, int]:
    """pg_dump the database into ``stream`` and return the row counts of the same snapshot."""
    with _psycopg().connect(_libpq_dsn(url)) as connection:
        # The exported snapshot lives as long as this transaction; pg_dump reads exactly what we counted.
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = connection.execute("SELECT pg_export_snapshot()").fetchone()[0]
        counts = postgresql_row_counts(connection)
        _run_tool(url, [postgres_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}"], stdout=stream)
        connection.rollback()
    return counts


def verify_postgresql(url: URL, stream: BinaryIO) -> dict[str, int]:
    """Restore the dump into a scratch database on the same server and return its row counts."""
    with _scratch_postgresql_database(url) as scratch_url:
        _pg_restore(scratch_url, stream, "--exit-on-error")
        with _psycopg().connect(_libpq_dsn(scratch_url)) as connection:
            return postgresql_row_counts(connection)


def restore_postgresql(url: URL, stream: BinaryIO) -> None:
    """Replace every object in the dump, in one transaction; objects created since stay in place."""
    _pg_restore(url, stream, "--clean", "--if-exists", "--single-transaction", "--exit-on-error")


def _psycopg() -> types.ModuleType:
    """psycopg, imported where it is used: it is optional (the ``postgres`` extra)."""
    return optional_import("psycopg", extra="postgres", feature=FEATURE)


def _psycopg_sql() -> types.ModuleType:
    """psycopg's query composition module, imported where it is used (see :func:`_psycopg`)."""
    return optional_import("psycopg.sql", extra="postgres", feature=FEATURE)


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


def _pg_restore(url: URL, stream: BinaryIO, *options: str) -> None:
    _run_tool(url, [postgres_tool("pg_restore"), "--no-owner", "--no-privileges", *options], stdin=stream)


@contextmanager
def _scratch_postgresql_database(url: URL) -> Iterator[URL]:
    """A new, empty database on the same server, dropped afterwards."""
    pg, sql = _psycopg(), _psycopg_sql()
    name = f"jobdeck_verify_{uuid.uuid4().hex[:16]}"
    with pg.connect(_libpq_dsn(url), autocommit=True) as connection:
        try:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except pg.Error as error:
            raise BackupError(
                f"cannot create the scratch database {name} to verify the backup on {redact_url(url)}: "
                f"{str(error).strip()[:MAX_ERROR_CHARS]}"
            ) from None
    try:
        yield normalise_url(url).set(database=name)
    finally:
        with pg.connect(_libpq_dsn(url), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
