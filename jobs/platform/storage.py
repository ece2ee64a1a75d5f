"""Where jobdeck keeps the files its jobs write (exports, backups): one small interface.

A job asks the storage for a *new* file and writes into it; the file appears under its final,
generated name only once it is complete, so a reader never sees half a file and a failed job
leaves nothing behind. Names are ``<uuid4 hex><suffix>``, never taken from job input, so no
argument can steer a write outside the storage or onto another file.

:class:`LocalStorage` keeps files in one local directory. An object-storage implementation can
follow the same :class:`Storage` protocol later (its ``create`` would upload on commit and its
``url`` would return a presigned address).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from jobs.platform.errors import StorageError
from jobs.platform.settings import Settings

#: What may follow the generated name: a short extension chosen by code, such as ``.csv`` or ``.sqlite3.gz``.
SUFFIX_PATTERN = re.compile(r"(\.[a-z0-9]{1,10}){0,3}")
#: A stored file's name: 32 hex digits and an allowed suffix.
NAME_PATTERN = re.compile(r"[0-9a-f]{32}(\.[a-z0-9]{1,10}){0,3}")
#: Files being written carry this ending until they are complete.
PARTIAL_SUFFIX = ".part"
#: Bytes read at a time when checksumming a file.
DEFAULT_CHUNK_SIZE = 1024 * 1024


@dataclass
class NewFile:
    """A file being written: write to ``stream``; after the ``create`` block, the other fields are set.

    Parameters:
      name(str): the generated name the file has (after the block) in its storage.
      stream(BinaryIO): where to write the content, a seekable binary file.
      size(int): bytes written, set when the file is complete.
      sha256(str): hex SHA-256 of the content, set when the file is complete.
    """

    name: str
    stream: BinaryIO
    size: int = 0
    sha256: str = ""


class Storage(Protocol):
    """A place for job output files, addressed by generated names."""

    def create(self, suffix: str = "") -> AbstractContextManager[NewFile]:
        """Open a new, generated-name file for writing; it becomes visible only if the block succeeds."""

    def open(self, name: str) -> BinaryIO:
        """Open a stored file for reading."""

    def delete(self, name: str) -> bool:
        """Remove a stored file; return whether it existed."""

    def exists(self, name: str) -> bool:
        """Whether a stored file of that name exists."""

    def size(self, name: str) -> int:
        """The stored file's size in bytes."""

    def url(self, name: str) -> str:
        """Where the file can be downloaded from (a local path, or later an object-storage URL)."""


class LocalStorage:
    """Files in one local directory, created on first use.

    Parameters:
      directory(Path): the folder the files live in.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.directory)!r})"

    @contextmanager
    def create(self, suffix: str = "") -> Iterator[NewFile]:
        """Write a new file under a generated name; on error, remove what was written and re-raise.

        The content goes to ``<name>.part`` and is renamed to ``<name>`` (atomic on one file
        system) after it has been flushed to disk and checksummed.
        """
        if not SUFFIX_PATTERN.fullmatch(suffix):
            raise ValueError(f"suffix must be a short lower-case extension like '.csv', got {suffix!r}")
        self._ensure_writable_directory()
        name = uuid.uuid4().hex + suffix
        final_path = self.directory / name
        partial_path = self.directory / (name + PARTIAL_SUFFIX)
        try:
            stream = partial_path.open("xb")
        except OSError as error:
            raise StorageError(
                f"cannot create a file in {self.directory}: {error.strerror or error}"
            ) from None
        new_file = NewFile(name=name, stream=stream)
        try:
            yield new_file
            stream.flush()
            os.fsync(stream.fileno())
            stream.close()
            new_file.size = partial_path.stat().st_size
            new_file.sha256 = file_sha256(partial_path)
            os.replace(partial_path, final_path)
        except BaseException:
            stream.close()
            partial_path.unlink(missing_ok=True)
            raise

    def open(self, name: str) -> BinaryIO:
        """Open a stored file for reading; FileNotFoundError if it does not exist."""
        return self.path(name).open("rb")

    def delete(self, name: str) -> bool:
        """Remove a stored file; return whether it existed (so deleting twice is harmless)."""
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, name: str) -> bool:
        """Whether a stored file of that name exists."""
        return self.path(name).is_file()

    def size(self, name: str) -> int:
        """The stored file's size in bytes."""
        return self.path(name).stat().st_size

    def url(self, name: str) -> str:
        """The file's absolute local path, which the API serves for download."""
        return str(self.path(name))

    def path(self, name: str) -> Path:
        """The local path of a stored file; refuses anything that is not a generated name."""
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            # Names come back from the database; a tampered row must not reach outside the folder.
            raise StorageError(f"{name!r} is not the name of a file jobdeck stored")
        return self.directory / name

    def remove_stale_partials(self, older_than_seconds: float) -> int:
        """Delete ``.part`` files left by writers that died, untouched for ``older_than_seconds``."""
        if not self.directory.is_dir():
            return 0
        cutoff = time.time() - older_than_seconds
        removed = 0
        for partial in self.directory.glob("*" + PARTIAL_SUFFIX):
            try:
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # another clean-up got there first
        return removed

    def _ensure_writable_directory(self) -> None:
        ensure_directory(self.directory, "the storage directory")
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise StorageError(f"the storage directory {self.directory} is not writable")


def delete_files_of(storage: Storage, rows: Iterable) -> list[int]:
    """Delete the stored file of each row (``row.path``, if any); return the rows' ids."""
    ids = []
    for row in rows:
        if row.path:
            storage.delete(row.path)
        ids.append(row.id)
    return ids


def file_sha256(path: Path | str) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    with open(path, "rb") as stream:
        return stream_sha256(stream)


def stream_sha256(stream: BinaryIO) -> str:
    """The hex SHA-256 of what is left to read in a binary stream."""
    digest = hashlib.sha256()
    while chunk := stream.read(DEFAULT_CHUNK_SIZE):
        digest.update(chunk)
    return digest.hexdigest()


def export_storage(settings: Settings) -> LocalStorage:
    """The storage export files go to (``settings.export_dir``)."""
    return LocalStorage(settings.export_dir)


def backup_storage(settings: Settings) -> LocalStorage:
    """The storage backup files go to (``settings.backup_dir``)."""
    return LocalStorage(settings.backup_dir)


def ensure_directory(directory: Path, what: str) -> None:
    """Create ``directory`` (and its parents) unless it exists; StorageError naming ``what`` if not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(f"cannot create {what} {directory}: {error.strerror or error}") from None


def write_atomically(path: Path, content: str | bytes, *, encoding: str = "utf-8") -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename: readers see old or new,
    and a crash leaves no torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if isinstance(content, bytes):
            handle = os.fdopen(descriptor, "wb")
        else:
            handle = os.fdopen(descriptor, "w", encoding=encoding, newline="")
        with handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
