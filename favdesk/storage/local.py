"""The local backend: the bucket's layout in a folder, every file written atomically.

Used when Supabase is not configured (demo mode and offline use). A write goes to a temp file
in the same folder, is fsynced, then renamed over the old file, so a crash or a full disk
leaves either the old file or the new one, never half of one. Files of any size: the folder
has no limit of its own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from favdesk.errors import StorageError
from favdesk.storage import BUCKET, StoredFile, check_key, user_prefix

TEMP_SUFFIX = ".tmp"
#: A file is copied in pieces this big, each reported as progress.
COPY_CHUNK = 4 * 1024 * 1024


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file that replaces `path` all at once when the block ends without an error (temp file
    beside it, fsync, rename, fsync of the folder); on an error `path` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once."""
    with atomic_file(path) as file:
        file.write(data)


def copy_in_chunks(
    source: BinaryIO, target: BinaryIO, on_progress: Callable[[int, int], None] | None
) -> None:
    """Copy a file piece by piece (never whole in memory), reporting the bytes copied."""
    size = os.fstat(source.fileno()).st_size
    copied = 0
    while chunk := source.read(COPY_CHUNK):
        target.write(chunk)
        copied += len(chunk)
        if on_progress is not None:
            on_progress(copied, size)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a folder to flush it)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage:
    """Files under `root/favorites_raw/spotify/{userId}/{YYYY-MM-DD}.json`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = f"local folder {self.root}"

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    @property
    def bucket_dir(self) -> Path:
        return self.root / BUCKET

    def ensure_bucket(self) -> None:
        """Create the bucket folder."""
        try:
            self.bucket_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"could not create {self.bucket_dir}: {exc.strerror}") from None

    def upload_file(
        self, key: str, source: Path, on_progress: Callable[[int, int], None] | None = None
    ) -> StoredFile:
        """Copy the file beside its place, then rename it over the day's earlier one."""
        path = self.bucket_dir / check_key(key)
        try:
            with source.open("rb") as data, atomic_file(path) as file:
                copy_in_chunks(data, file, on_progress)
        except OSError as exc:
            raise StorageError(f"could not write {path}: {write_failure(exc)}") from None
        return self._stored(key, path)

    def list_files(self, user_id: str) -> list[StoredFile]:
        """The user's files, newest date first; temp files of an interrupted write are skipped."""
        prefix = user_prefix(user_id)
        folder = self.bucket_dir / prefix
        try:
            paths = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"could not list {folder}: {exc.strerror}") from None
        files = [self._stored(f"{prefix}/{p.name}", p) for p in paths]
        return sorted(files, key=lambda f: f.name, reverse=True)

    def download(self, key: str) -> bytes:
        """The file's exact bytes."""
        path = self.bucket_dir / check_key(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise self._gone(key) from None
        except OSError as exc:
            raise StorageError(f"could not read {path}: {exc.strerror}") from None

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        """The file itself, opened for reading."""
        path = self.bucket_dir / check_key(key)
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise self._gone(key) from None
        except OSError as exc:
            raise StorageError(f"could not read {path}: {exc.strerror}") from None
        with file:
            yield file

    def delete(self, key: str) -> None:
        """Remove the file (and make the removal durable)."""
        path = self.bucket_dir / check_key(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(f"could not delete {path}: {exc.strerror}") from None
        _fsync_dir(path.parent)

    def close(self) -> None:
        """Nothing to release."""

    def _gone(self, key: str) -> StorageError:
        return StorageError(
            f"file disappeared: {BUCKET}/{key} is no longer in {self.description}", status="404"
        )

    def _stored(self, key: str, path: Path) -> StoredFile:
        stat = path.stat()
        updated = datetime.fromtimestamp(stat.st_mtime, UTC)
        return StoredFile(key=key, name=path.name, size=stat.st_size, updated_at=updated)


def write_failure(error: OSError) -> str:
    """Why a write failed, and what to do; the day's earlier file is always kept whole."""
    if error.errno == errno.ENOSPC:
        return "the disk is full: free some space (the earlier file is kept), then sync again"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{error.strerror}: make the folder writable, or set FAVDESK_DATA_DIR elsewhere"
    return error.strerror or type(error).__name__
