"""cleanup_expired_data and cleanup_cache remove what expired, report it, and change nothing twice."""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from jobs.billing.models import Backup, Export, Report
from jobs.platform.errors import PermanentError
from jobs.platform.keys import CACHE_PREFIX
from jobs.platform.storage import LocalStorage

NOW = datetime(2025, 6, 30, 16, 0, tzinfo=UTC)


def stored_file(storage: LocalStorage, suffix: str = ".csv") -> str:
    with storage.create(suffix) as new_file:
        new_file.stream.write(b"content")
    return new_file.name


def add_exports(engine: Engine, storage: LocalStorage) -> dict[str, tuple[int, str]]:
    """An expired ready export, a fresh one, and one left running by a dead worker two hours ago."""
    cases = {
        "expired": ("ready", NOW - timedelta(days=8), NOW - timedelta(days=1)),
        "fresh": ("ready", NOW - timedelta(days=1), NOW + timedelta(days=6)),
        "stale": ("running", NOW - timedelta(hours=2), NOW + timedelta(days=5)),
    }
    made = {}
    with engine.begin() as connection:
        for case, (state, created_at, expires_at) in cases.items():
            path = stored_file(storage)
            export_id = connection.execute(
                insert(Export.__table__)
                .values(dataset="bills", format="csv", filters={}, path=path, state=state,
                        created_at=created_at, expires_at=expires_at)
                .returning(Export.__table__.c.id)
            ).scalar_one()  # fmt: skip
            made[case] = (export_id, path)
    return made


def add_backups(engine: Engine, storage: LocalStorage, count: int) -> list[tuple[int, str]]:
    made = []
    with engine.begin() as connection:
        for age in range(count, 0, -1):
            path = stored_file(storage, ".sqlite3.gz")
            backup_id = connection.execute(
                insert(Backup.__table__)
                .values(path=path, engine="sqlite", state="ready", verified=True, tables={},
                        created_at=NOW - timedelta(days=age))
                .returning(Backup.__table__.c.id)
            ).scalar_one()  # fmt: skip
            made.append((backup_id, path))
    return made


def add_reports(engine: Engine, report_dir: Path, outside: Path) -> dict[str, int]:
    report_dir.mkdir(parents=True, exist_ok=True)
    for name in ("old.csv", "old.html", "new.csv"):
        (report_dir / name).write_text(name)
    outside.write_text("not jobdeck's")
    cases = {
        "old": (NOW - timedelta(days=31), str(report_dir / "old.csv"), "old.html"),
        "new": (NOW - timedelta(days=1), str(report_dir / "new.csv"), None),
        "outside": (NOW - timedelta(days=90), str(outside), None),
    }
    made = {}
    with engine.begin() as connection:
        for index, (case, (created_at, csv_path, html_path)) in enumerate(cases.items()):
            made[case] = connection.execute(
                insert(Report.__table__)
                .values(kind="daily", period_start=date(2025, 1, 1 + index),
                        period_starts_at=datetime(2024, 12, 31, 16, tzinfo=UTC) + timedelta(days=index),
                        period_end=date(2025, 1, 2 + index), timezone="Asia/Shanghai", language="en", data={},
                        csv_path=csv_path,
                        html_path=html_path, created_at=created_at)
                .returning(Report.__table__.c.id)
            ).scalar_one()  # fmt: skip
    return made


def test_cleanup_removes_what_expired_and_nothing_the_second_time(
    jobs_runtime, engine: Engine, tmp_path
) -> None:
    from jobs.billing.maintenance import cleanup_expired_data

    settings = jobs_runtime.settings
    exports_storage, backups_storage = LocalStorage(settings.export_dir), LocalStorage(settings.backup_dir)
    exports = add_exports(engine, exports_storage)
    backups = add_backups(engine, backups_storage, 3)
    reports = add_reports(engine, settings.report_dir, tmp_path / "elsewhere.csv")
    partial = settings.export_dir / ("f" * 32 + ".csv.part")
    partial.write_bytes(b"half")
    os.utime(partial, (time.time() - 7200, time.time() - 7200))

    removed = cleanup_expired_data.fn(fire_time=NOW.isoformat())

    assert removed == {
        "exports_expired": [exports["expired"][0]],
        "stale_exports_failed": [exports["stale"][0]],
        "stale_backups_failed": [],
        "backups_removed": [backups[0][0]],
        "report_files_deleted": 2,
        "reports_cleared": 1,
        "partial_files_removed": 1,
        "now": NOW.isoformat(),
    }
    with engine.connect() as connection:
        states = dict(connection.execute(select(Export.id, Export.state)).all())
        kept_backups = connection.execute(select(Backup.id).order_by(Backup.id)).scalars().all()
        paths = {
            row.id: (row.csv_path, row.html_path) for row in connection.execute(select(Report.__table__))
        }
    assert states == {
        exports["expired"][0]: "expired",
        exports["fresh"][0]: "ready",
        exports["stale"][0]: "failed",
    }
    assert sorted(path.name for path in settings.export_dir.iterdir()) == [exports["fresh"][1]]
    assert kept_backups == [backups[1][0], backups[2][0]]
    assert sorted(path.name for path in settings.backup_dir.iterdir()) == sorted(
        [backups[1][1], backups[2][1]]
    )
    assert paths[reports["old"]] == (None, None)
    assert paths[reports["new"]] == (str(settings.report_dir / "new.csv"), None)
    assert paths[reports["outside"]] == (str(tmp_path / "elsewhere.csv"), None)
    assert sorted(path.name for path in settings.report_dir.iterdir()) == ["new.csv"]
    assert (tmp_path / "elsewhere.csv").exists()

    again = cleanup_expired_data.fn(fire_time=NOW.isoformat())

    assert again == {
        **dict.fromkeys(
            ("exports_expired", "stale_exports_failed", "stale_backups_failed", "backups_removed"), []
        ),
        **dict.fromkeys(("report_files_deleted", "reports_cleared", "partial_files_removed"), 0),
        "now": NOW.isoformat(),
    }


def test_an_export_file_lives_until_its_expiry(jobs_runtime, engine: Engine) -> None:
    from jobs.billing.exports.actors import export_data
    from jobs.billing.maintenance import cleanup_expired_data

    summary = export_data.fn("customers")
    path = jobs_runtime.settings.export_dir / summary["path"]
    expires_at = datetime.fromisoformat(summary["expires_at"])

    assert (
        cleanup_expired_data.fn(fire_time=(expires_at - timedelta(seconds=1)).isoformat())["exports_expired"]
        == []
    )
    assert path.exists()
    assert cleanup_expired_data.fn(fire_time=expires_at.isoformat())["exports_expired"] == [
        summary["export_id"]
    ]
    assert not path.exists()


def test_a_bad_fire_time_fails_permanently(jobs_runtime) -> None:
    from jobs.billing.maintenance import cleanup_expired_data

    with pytest.raises(PermanentError, match="fire_time must be an ISO 8601 time"):
        cleanup_expired_data.fn(fire_time="yesterday")


def test_cleanup_cache_counts_what_it_removed(runtime) -> None:
    from jobs.billing.maintenance import cleanup_cache

    client = runtime.broker.client
    client.mset({f"{CACHE_PREFIX}stats:1": "x", f"{CACHE_PREFIX}stats:2": "x", "jobdeck:tasks:1": "keep"})

    assert cleanup_cache.fn() == 2
    assert cleanup_cache.fn() == 0
    assert client.get("jobdeck:tasks:1") == b"keep"
    with pytest.raises(PermanentError, match="pattern"):
        cleanup_cache.fn("")
