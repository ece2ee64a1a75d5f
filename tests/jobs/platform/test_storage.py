"""LocalStorage writes complete files under generated names, or nothing at all."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from jobs.platform.errors import StorageError
from jobs.platform.storage import NAME_PATTERN, LocalStorage


def test_a_new_file_appears_complete_under_a_generated_name(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "files")

    with storage.create(".csv") as new_file:
        new_file.stream.write(b"id,amount\r\n1,10.00\r\n")
        assert list((tmp_path / "files").iterdir()) == [tmp_path / "files" / f"{new_file.name}.part"]

    assert NAME_PATTERN.fullmatch(new_file.name) and new_file.name.endswith(".csv")
    assert new_file.size == 20
    assert new_file.sha256 == hashlib.sha256(b"id,amount\r\n1,10.00\r\n").hexdigest()
    assert [path.name for path in (tmp_path / "files").iterdir()] == [new_file.name]
    with storage.open(new_file.name) as stream:
        assert stream.read() == b"id,amount\r\n1,10.00\r\n"
    assert storage.size(new_file.name) == 20
    assert storage.url(new_file.name) == str(tmp_path / "files" / new_file.name)


def test_each_file_gets_its_own_name(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    names = set()
    for _ in range(3):
        with storage.create(".jsonl") as new_file:
            new_file.stream.write(b"{}\n")
        names.add(new_file.name)
    assert len(names) == 3


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(RuntimeError), storage.create(".csv") as new_file:
        new_file.stream.write(b"half a file")
        raise RuntimeError("the database went away")

    assert list(tmp_path.iterdir()) == []


def test_delete_is_harmless_twice(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with storage.create() as new_file:
        new_file.stream.write(b"x")

    assert storage.delete(new_file.name) is True
    assert storage.delete(new_file.name) is False
    assert not storage.exists(new_file.name)


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "report.csv", "", "a" * 32 + "/../x"])
def test_names_that_storage_did_not_generate_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(StorageError, match="is not the name of a file jobdeck stored"):
        LocalStorage(tmp_path).open(name)


@pytest.mark.parametrize("suffix", ["csv", "/../x.csv", ".CSV", ".a-b"])
def test_suffixes_are_short_extensions_only(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(ValueError, match="suffix"), LocalStorage(tmp_path).create(suffix):
        pass


def test_a_directory_that_cannot_be_created_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the folder should be")

    expected = f"cannot create the storage directory {blocker / 'exports'}"
    with pytest.raises(StorageError, match=expected), LocalStorage(blocker / "exports").create(".csv"):
        pass


def test_stale_partial_files_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    stale, fresh = tmp_path / ("a" * 32 + ".csv.part"), tmp_path / ("b" * 32 + ".csv.part")
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))

    assert LocalStorage(tmp_path).remove_stale_partials(older_than_seconds=600) == 1
    assert LocalStorage(tmp_path).remove_stale_partials(older_than_seconds=600) == 0
    assert not stale.exists() and fresh.exists()
