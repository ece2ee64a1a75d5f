"""Database fixtures for the billing data layer: SQLite always, PostgreSQL when TEST_DATABASE_URL is set.

TEST_DATABASE_URL names a PostgreSQL server (e.g. postgresql://postgres@127.0.0.1:5432/postgres); the
suite creates its own uniquely named database there and drops it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from jobs.platform.database import make_engine, make_session_factory, upgrade
from jobs.platform.settings import Settings
from jobs.runtime import Runtime, start

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def _libpq_url(url: str, database: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgresql_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    server_url = os.environ["TEST_DATABASE_URL"]
    name = f"jobdeck_test_{uuid.uuid4().hex[:12]}"
    maintenance_url = _libpq_url(server_url, "postgres")
    with psycopg.connect(maintenance_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _libpq_url(server_url, name)
    finally:
        with psycopg.connect(maintenance_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file under tmp_path, or the session's PostgreSQL database wiped clean."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'jobdeck.sqlite3'}"
    url = request.getfixturevalue("postgresql_database_url")
    with psycopg.connect(url, autocommit=True) as connection:
        # One database per session, so each test starts from an empty schema instead.
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to the latest revision."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def started(settings: Settings, **overrides) -> Iterator[Runtime]:
    """This process's runtime on ``settings`` with ``overrides``; its engine is disposed of afterwards."""
    runtime = start(settings.with_overrides(**overrides))
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def jobdeck(settings, engine, database_url, tmp_path):
    """This process's runtime on the test database, in Shanghai, with its own report folder."""
    yield from started(
        settings,
        database_url=database_url,
        timezone=ZoneInfo("Asia/Shanghai"),
        report_dir=tmp_path / "reports",
        report_language="en",
    )


@pytest.fixture
def jobs_runtime(settings, engine, database_url, tmp_path):
    """The runtime on the test's database, with its own file folders and short retention."""
    yield from started(
        settings,
        database_url=database_url,
        export_dir=tmp_path / "exports",
        backup_dir=tmp_path / "backups",
        report_dir=tmp_path / "reports",
        backup_keep=2,
        export_ttl_days=7,
        report_file_ttl_days=30,
    )


@pytest.fixture
def worker_engine(environment: dict[str, str]) -> Iterator[Engine]:
    """An engine on the database of the worker processes a test starts (the environment's), migrated."""
    upgrade(environment["DATABASE_URL"])
    engine = make_engine(environment["DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture
def worker_sessions(worker_engine: Engine) -> sessionmaker[Session]:
    """Sessions on the worker processes' database (see ``worker_engine``)."""
    return make_session_factory(worker_engine)
