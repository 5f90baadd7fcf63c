"""Uploading bytes through a storage backend, which takes files (uploads stream from disk)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from favdesk.storage import Storage, StoredFile


def upload_bytes(
    storage: Storage,
    key: str,
    data: bytes,
    on_progress: Callable[[int, int], None] | None = None,
) -> StoredFile:
    """`storage.upload_file` of a temporary file holding `data`."""
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, "upload.json")
        source.write_bytes(data)
        return storage.upload_file(key, source, on_progress)
