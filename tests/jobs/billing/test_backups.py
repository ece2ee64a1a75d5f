"""backup_database takes verified, checksummed backups and keeps the newest N; restore_backup restores one."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine, delete, func, insert, select

import jobs.billing.backups.taking
from jobs.billing.backups import BackupError, prune_backups, restore_backup
from jobs.billing.models import Backup, Bill, Customer, Payment
from jobs.billing.seed import seed_demo
from jobs.platform.storage import backup_storage
from tests.conftest import run_jobdeck


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            model.__tablename__: connection.scalar(select(func.count()).select_from(model.__table__))
            for model in (Customer, Bill, Payment)
        }


def backup_rows(engine: Engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(Backup.__table__).order_by(Backup.id)).all()


def backup_files(runtime) -> list[str]:
    return sorted(path.name for path in runtime.settings.backup_dir.iterdir())


def test_a_backup_is_verified_recorded_and_restores_the_data(jobs_runtime, engine: Engine) -> None:
    from jobs.billing.maintenance import backup_database

    seed_demo(engine, customers=40, bills=300)
    at_backup = table_counts(engine)

    summary = backup_database.fn()

    (row,) = backup_rows(engine)
    assert (row.id, row.state, row.verified, row.path) == (
        summary["backup_id"],
        "ready",
        True,
        summary["path"],
    )
    assert row.engine == engine.dialect.name == summary["engine"]
    content = (jobs_runtime.settings.backup_dir / row.path).read_bytes()
    assert hashlib.sha256(content).hexdigest() == row.sha256 == summary["sha256"]
    assert row.size_bytes == len(content)
    assert {table: row.tables[table] for table in at_backup} == at_backup
    assert row.tables["backups"] == 1  # its own row, "running" at the time
    assert summary["pruned"] == []

    with engine.begin() as connection:
        connection.execute(delete(Payment.__table__))
        connection.execute(
            insert(Customer.__table__).values(id=10_000, name="Late", email="late@example.com", locale="en")
        )
    assert table_counts(engine) != at_backup

    restored = restore_backup(jobs_runtime.settings, row.id)

    assert table_counts(engine) == at_backup
    assert restored["backup_id"] == row.id and restored["tables"] == row.tables
    # The catalogue is not rolled back: the backup stays ready and known.
    assert [(backup.id, backup.state, backup.verified) for backup in backup_rows(engine)] == [
        (row.id, "ready", True)
    ]


def test_only_the_newest_backups_are_kept(jobs_runtime, engine: Engine) -> None:
    from jobs.billing.maintenance import backup_database

    seed_demo(engine, customers=5, bills=20)

    first, second, third = (backup_database.fn() for _ in range(3))

    assert (first["pruned"], second["pruned"], third["pruned"]) == ([], [], [first["backup_id"]])
    assert [row.id for row in backup_rows(engine)] == [second["backup_id"], third["backup_id"]]
    assert backup_files(jobs_runtime) == sorted([second["path"], third["path"]])
    assert prune_backups(engine, backup_storage(jobs_runtime.settings), keep=2) == []
    # After a restore the newer backup is still there to restore.
    restore_backup(jobs_runtime.settings, second["backup_id"])
    assert [row.id for row in backup_rows(engine)] == [second["backup_id"], third["backup_id"]]
    restore_backup(jobs_runtime.settings, third["backup_id"])


def test_a_backup_that_fails_verification_is_not_kept(jobs_runtime, engine: Engine, monkeypatch) -> None:
    from jobs.billing.maintenance import backup_database

    seed_demo(engine, customers=5, bills=20)
    restore_counts = jobs.billing.backups.taking._verify

    def losing_a_bill(*arguments):
        counts = restore_counts(*arguments)
        return {**counts, "bills": counts["bills"] - 1}

    monkeypatch.setattr(jobs.billing.backups.taking, "_verify", losing_a_bill)

    with pytest.raises(BackupError, match="did not verify: bills: 20 at backup, 19 restored"):
        backup_database.fn()

    (row,) = backup_rows(engine)
    assert (row.state, row.verified, row.path) == ("failed", False, None)
    assert backup_files(jobs_runtime) == []
    with pytest.raises(BackupError, match=f"backup {row.id} is failed, not a verified backup"):
        restore_backup(jobs_runtime.settings, row.id)


def test_restore_refuses_an_unknown_id_and_a_tampered_file(jobs_runtime, engine: Engine) -> None:
    from jobs.billing.maintenance import backup_database

    seed_demo(engine, customers=5, bills=20)
    summary = backup_database.fn()
    path = jobs_runtime.settings.backup_dir / summary["path"]

    with pytest.raises(BackupError, match="there is no backup with id 999"):
        restore_backup(jobs_runtime.settings, 999)

    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(
        BackupError, match=f"the file of backup {summary['backup_id']} does not match its checksum"
    ):
        restore_backup(jobs_runtime.settings, summary["backup_id"])

    path.unlink()
    with pytest.raises(BackupError, match="is missing"):
        restore_backup(jobs_runtime.settings, summary["backup_id"])
    assert table_counts(engine)["bills"] == 20


def test_the_command_line_backs_up_and_restores(environment: dict[str, str], worker_engine: Engine) -> None:
    engine = worker_engine
    seed_demo(engine, customers=5, bills=20)

    backed_up = run_jobdeck(environment, "db", "backup")
    assert backed_up.returncode == 0, backed_up.stderr
    with engine.begin() as connection:
        connection.execute(delete(Payment.__table__))
        connection.execute(delete(Bill.__table__))

    (row,) = backup_rows(engine)
    restored = run_jobdeck(environment, "db", "restore", str(row.id), "--yes")
    unknown = run_jobdeck(environment, "db", "restore", "999", "--yes")

    assert restored.returncode == 0, restored.stderr
    assert f"Restored backup {row.id}" in restored.stdout
    assert table_counts(engine)["bills"] == 20
    assert unknown.returncode == 2, "an unknown id is bad input"
    assert unknown.stderr.strip() == "Error: there is no backup with id 999"
