"""Engines, migrations and start-up checks against SQLite (and PostgreSQL when TEST_DATABASE_URL is set)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from jobs.billing.models import Customer, utc_now
from jobs.platform.database import (
    alembic_config,
    check_connection,
    make_engine,
    make_session_factory,
    normalise_url,
    redact_url,
    upgrade,
)
from jobs.platform.errors import ServiceUnavailable, StorageError
from jobs.runtime import database_metadata, in_database_metadata

UNREACHABLE_URL = "postgresql://billing:s3cr3t-pa55@127.0.0.1:1/jobdeck"


def test_migrations_create_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": in_database_metadata}
        )
        differences = compare_metadata(context, database_metadata())
        current = context.get_current_revision()

    assert differences == []
    assert current == ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()


def test_upgrade_is_idempotent_and_independent_of_the_current_directory(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    upgrade(database_url)
    upgrade(database_url)

    engine = make_engine(database_url)
    assert {"customers", "bills", "payments", "notifications", "audit_log"} <= set(
        inspect(engine).get_table_names()
    )
    engine.dispose()


def test_downgrade_to_base_then_upgrade_again(engine: Engine, database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    upgrade(database_url)
    assert "bills" in inspect(engine).get_table_names()


def test_sessions_commit_and_keep_objects_readable(engine: Engine) -> None:
    sessions = make_session_factory(engine)
    with sessions() as session:
        customer = Customer(name="Ada", email="ada@example.com", locale="en", created_at=utc_now())
        session.add(customer)
        session.commit()

    assert customer.id is not None and customer.name == "Ada"


def test_sqlite_connections_get_the_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}")
    with engine.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
        }
    engine.dispose()

    # synchronous: 1 is NORMAL.
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1, "synchronous": 1}


def test_sqlite_parent_directory_is_created(tmp_path: Path) -> None:
    database = tmp_path / "deep" / "er" / "jobdeck.sqlite3"

    check_connection(make_engine(f"sqlite:///{database}"))

    assert database.parent.is_dir()


def test_sqlite_directory_that_cannot_be_created_raises_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    with pytest.raises(StorageError, match="cannot create the directory .*a-file/var"):
        make_engine(f"sqlite:///{blocker / 'var' / 'jobdeck.sqlite3'}")
    with pytest.raises(StorageError):
        upgrade(f"sqlite:///{blocker / 'var' / 'jobdeck.sqlite3'}")


def test_unreachable_postgresql_raises_service_unavailable_without_the_password() -> None:
    with pytest.raises(ServiceUnavailable) as raised:
        check_connection(make_engine(UNREACHABLE_URL))

    message = str(raised.value)
    assert message.startswith(
        "database at postgresql+psycopg://billing:***@127.0.0.1:1/jobdeck cannot be reached: "
    )
    assert "s3cr3t-pa55" not in message


def test_upgrade_of_unreachable_postgresql_raises_service_unavailable() -> None:
    with pytest.raises(ServiceUnavailable, match="cannot be reached") as raised:
        upgrade(UNREACHABLE_URL)

    assert "s3cr3t-pa55" not in str(raised.value)


def test_check_connection_passes_on_a_reachable_database(engine: Engine) -> None:
    check_connection(engine)

    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db/x", "postgresql+psycopg://u:p@db/x"),
        ("postgres://u:p@db/x", "postgresql+psycopg://u:p@db/x"),
        ("postgresql+psycopg://u@db/x", "postgresql+psycopg://u@db/x"),
        ("sqlite:///var/jobdeck.sqlite3", "sqlite:///var/jobdeck.sqlite3"),
    ],
)
def test_postgresql_urls_use_psycopg_3(given: str, expected: str) -> None:
    assert normalise_url(given).render_as_string(hide_password=False) == expected


def test_redact_url_hides_passwords() -> None:
    assert (
        redact_url("postgresql://billing:hunter2@db:5432/jobdeck")
        == "postgresql://billing:***@db:5432/jobdeck"
    )
    assert redact_url("postgresql://billing@db/jobdeck") == "postgresql://billing@db/jobdeck"
    assert "hunter2" not in redact_url("not a url://billing:hunter2@db")


def test_migration_0003_gives_existing_reports_the_instant_their_period_starts(database_url: str) -> None:
    from sqlalchemy import select

    from jobs.billing.models import Report

    upgrade(database_url, "0002")
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO reports (kind, period_start, period_end, timezone, language, data, created_at) "
            "VALUES "
            "('daily', '2026-01-05', '2026-01-06', 'Asia/Shanghai', 'en', '{}', '2026-01-06 00:00:00+00:00')"
        )

    upgrade(database_url)

    with engine.begin() as connection:
        starts_at = connection.scalar(select(Report.period_starts_at))
    engine.dispose()
    assert starts_at.isoformat() == "2026-01-04T16:00:00+00:00"  # midnight in Shanghai
