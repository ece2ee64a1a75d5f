"""A worker installed without the ``postgres`` extra (no psycopg) still imports every job and backs up SQLite.

The worker is a real ``dramatiq jobs.worker`` process in a virtual environment of its own: every
package of the suite's environment linked into it, except psycopg's.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from jobs.billing.backups.postgresql import dump_postgresql
from jobs.billing.models import Backup
from jobs.platform.errors import MissingExtra
from jobs.platform.extras import optional_import
from monitoring.actions import SUCCESS
from tests.conftest import process_environment

#: The distributions the postgres extra installs (psycopg[binary]), and the C build of psycopg.
POSTGRES_DISTRIBUTIONS = {"psycopg", "psycopg_binary", "psycopg_c"}


def test_a_missing_extra_names_the_extra_to_install() -> None:
    with pytest.raises(MissingExtra, match=r"pip install 'jobdeck\[postgres\]'") as raised:
        optional_import("no_such_module_xyz", extra="postgres", feature="Backing up PostgreSQL")

    assert str(raised.value).startswith("Backing up PostgreSQL needs the no_such_module_xyz package")


def test_backing_up_postgresql_without_psycopg_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what Python does with a module it cannot import

    with pytest.raises(MissingExtra, match=r"needs the psycopg package.*pip install 'jobdeck\[postgres\]'"):
        dump_postgresql(make_url("postgresql://jobdeck@127.0.0.1:1/jobdeck"), io.BytesIO())


def distribution_of(entry: str) -> str:
    """The distribution a site-packages entry belongs to: ``psycopg_binary.libs`` -> ``psycopg_binary``."""
    return entry.split("-")[0].split(".")[0]


def environment_without_postgres(directory: Path) -> Path:
    """A virtual environment with this one's packages but psycopg's; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    prefix = {"base": str(directory), "platbase": str(directory)}
    for kind in ("purelib", "platlib"):  # the same directory on most systems
        source, target = Path(sysconfig.get_path(kind)), Path(sysconfig.get_path(kind, vars=prefix))
        target.mkdir(parents=True, exist_ok=True)
        for entry in source.iterdir():
            if distribution_of(entry.name) in POSTGRES_DISTRIBUTIONS or (target / entry.name).exists():
                continue
            if entry.suffix == ".pth":
                # site.py runs .pth files from the directory it scans: a copy keeps the editable install.
                (target / entry.name).write_bytes(entry.read_bytes())
            else:
                (target / entry.name).symlink_to(entry)
    return directory / "bin" / "python"


@pytest.fixture
def python_without_postgres(tmp_path: Path, environment: dict[str, str]) -> Path:
    """The python of an environment without psycopg, checked to really lack it."""
    python = environment_without_postgres(tmp_path / "venv-without-postgres")
    probe = subprocess.run(
        [str(python), "-c", "import psycopg"],
        env=process_environment(environment),
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "No module named 'psycopg'" in probe.stderr, probe.stderr
    return python


@pytest.mark.slow
def test_a_worker_without_psycopg_backs_up_sqlite(
    runtime, worker_engine: Engine, python_without_postgres: Path, start_worker
) -> None:
    # Given a worker whose environment has no psycopg, on the migrated SQLite database
    worker_without_postgres = start_worker(python=python_without_postgres)

    # When it is sent a backup
    message = runtime.manager.send_task("backup_database")
    outcome = runtime.manager.wait_for_result(message, timeout=60)

    # Then the backup succeeded, and its row and file are there and verified
    assert outcome.status == SUCCESS, f"{outcome.error}\n{worker_without_postgres.log()}"
    with worker_engine.connect() as connection:
        (row,) = connection.execute(select(Backup.__table__)).all()
    assert (row.id, row.engine, row.state, row.verified) == (
        outcome.result["backup_id"],
        "sqlite",
        "ready",
        True,
    )
    content = (runtime.settings.backup_dir / row.path).read_bytes()
    assert hashlib.sha256(content).hexdigest() == row.sha256
    assert row.tables["bills"] == 0 and row.tables["backups"] == 1
