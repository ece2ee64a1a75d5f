"""Engines, sessions and migrations for the billing database (SQLite or PostgreSQL).

Every process builds its engine with :func:`make_engine`, checks it at start-up with
:func:`check_connection`, and brings the schema up to date with :func:`upgrade` (the Procfile's
``release`` step). Driver errors are converted here into :class:`~jobs.platform.errors.ServiceUnavailable`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from jobs.platform.errors import JobdeckError, NotMigrated, ServiceUnavailable, StorageError

if TYPE_CHECKING:
    from alembic.config import Config

#: The Alembic environment; found from this file so no current directory or alembic.ini is needed.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
#: How long a SQLite writer waits for another process's lock before failing, in milliseconds.
DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 30_000
#: How long connecting to PostgreSQL may take before the database counts as unreachable, in seconds.
DEFAULT_CONNECT_TIMEOUT = 10

SQLITE_PRAGMAS = (
    # WAL lets the web process read while a worker writes.
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={DEFAULT_SQLITE_BUSY_TIMEOUT_MS}",
    # SQLite ignores foreign keys unless told otherwise, per connection.
    "PRAGMA foreign_keys=ON",
    # Safe with WAL (a power cut can lose the last commits, never corrupt) and much faster than FULL.
    "PRAGMA synchronous=NORMAL",
)


def redact_url(url: str | URL) -> str:
    """Return the URL with any password replaced by ``***``, fit for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Not a URL SQLAlchemy understands: still hide anything between "user:" and "@".
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", str(url))


def normalise_url(database_url: str | URL) -> URL:
    """Parse the URL and pick the psycopg 3 driver for bare ``postgresql://`` and ``postgres://`` URLs."""
    try:
        url = make_url(database_url)
    except ArgumentError as error:
        raise JobdeckError(f"database URL {redact_url(database_url)} is not valid: {error}") from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        # Heroku-style postgres:// was dropped by SQLAlchemy; psycopg 3 is the driver we install.
        url = url.set(drivername=f"postgresql+{driver or 'psycopg'}")
    return url


def make_engine(database_url: str | URL) -> Engine:
    """Create the engine: psycopg 3 for PostgreSQL; for SQLite, the file's directory and the pragmas."""
    url = normalise_url(database_url)
    if url.get_backend_name() == "sqlite":
        _prepare_sqlite_directory(url)
        engine = create_engine(url, connect_args={"timeout": DEFAULT_SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    connect_args = (
        {"connect_timeout": DEFAULT_CONNECT_TIMEOUT} if url.get_backend_name() == "postgresql" else {}
    )
    # pre_ping: workers live for days and the database may restart under them.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to the engine; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def upsert_insert(session: Session, table: Any) -> Any:
    """An INSERT on ``table`` with ON CONFLICT support for the session's database (SQLite or PostgreSQL)."""
    inserts = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
    return inserts[session.get_bind().dialect.name](table)


def check_connection(engine: Engine) -> None:
    """Run ``SELECT 1``; raise ServiceUnavailable naming the database (without password) if it fails."""
    with unavailable_on_driver_error(engine.url), engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def upgrade(database_url: str | URL, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic, creating the SQLite file if needed."""
    url = normalise_url(database_url)
    engine = make_engine(url)
    try:
        # Check first so an unreachable database reads as such, while a failing migration keeps its own error.
        check_connection(engine)
    finally:
        engine.dispose()
    # Alembic only runs for `jobdeck db upgrade`; imported at the top it would load (and log) its
    # plugins in every worker, web and scheduler process.
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def alembic_config(database_url: str | URL) -> Config:
    """Build the Alembic Config in code: the packaged migrations folder and the given database."""
    from alembic.config import Config  # heavy, and only migrations need it (see upgrade)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates "%", which URL-encoded passwords contain.
    rendered = normalise_url(database_url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


@contextmanager
def guarded_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session of ``sessions`` whose lost or refused connection raises ServiceUnavailable."""
    with unavailable_on_driver_error(sessions.kw["bind"].url), sessions() as session:
        yield session


#: PostgreSQL's SQLSTATE for a table that does not exist.
UNDEFINED_TABLE = "42P01"


@contextmanager
def unavailable_on_driver_error(url: URL) -> Iterator[None]:
    """Turn a lost or refused database connection inside the block into ServiceUnavailable, and
    a database without jobdeck's tables into NotMigrated."""
    try:
        yield
    except (OperationalError, ProgrammingError) as error:
        if _missing_table(error):
            raise NotMigrated(
                f"database at {redact_url(url)} has no jobdeck tables yet: run `jobdeck db upgrade` "
                f"({_short_reason(error, url)})"
            ) from None
        if isinstance(error, ProgrammingError):
            raise
        raise ServiceUnavailable(
            f"database at {redact_url(url)} cannot be reached: {_short_reason(error, url)}"
        ) from None


def _missing_table(error: DBAPIError) -> bool:
    """Whether the driver says a table does not exist (SQLite has no error code for it)."""
    if getattr(error.orig, "sqlstate", None) == UNDEFINED_TABLE:
        return True
    return isinstance(error, OperationalError) and str(error.orig).startswith("no such table")


def _short_reason(error: DBAPIError, url: URL) -> str:
    lines = [line.strip() for line in str(error.orig).splitlines() if line.strip()]
    reason = lines[0] if lines else type(error.orig).__name__
    # Some drivers echo the connection string back; never let the password through.
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason[:300]


def _prepare_sqlite_directory(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    directory = Path(database).expanduser().resolve().parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(
            f"cannot create the directory {directory} for the SQLite database: {error.strerror or error}"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StorageError(f"the directory {directory} for the SQLite database is not writable")


def _set_sqlite_pragmas(dbapi_connection: object, connection_record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()
