"""Snapshots for the history tests: generated libraries, stored as the import stores them."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from favdesk.sandbox.spotify_library import LibraryGenerator
from favdesk.sandbox.storage import StorageSandbox
from favdesk.secret import Secret
from favdesk.storage import Storage, StoredFile, raw_key
from favdesk.storage.local import LocalStorage
from favdesk.storage.supabase import SupabaseStorage

USER = "zoe"


def library(serials: range | list[int], seed: int = 7) -> list[dict]:
    """Saved-track items, newest first, as the Spotify stand-in serves them (null tracks and
    local files included)."""
    generator = LibraryGenerator(seed)
    return [generator.item(serial) for serial in sorted(serials, reverse=True)]


def encoded(items: list) -> bytes:
    """The file the import writes: one compact JSON array."""
    return json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()


def put(storage: Storage, day: date, items: list | bytes, user: str = USER) -> StoredFile:
    """Store a snapshot of `day` (items, or the file's bytes) as favdesk's upload does."""
    data = items if isinstance(items, bytes) else encoded(items)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder, "library.json")
        source.write_bytes(data)
        return storage.upload_file(raw_key(user, day), source)


@contextmanager
def open_backend(kind: str, root: Path) -> Iterator[tuple[Storage, StorageSandbox | None]]:
    """The local folder, or Supabase Storage through the stand-in over real HTTP."""
    if kind == "local":
        yield LocalStorage(root / "bucket"), None
        return
    with StorageSandbox(root / "server") as server:
        storage = SupabaseStorage(server.url, Secret(server.service_role_key))
        storage.ensure_bucket()
        try:
            yield storage, server
        finally:
            storage.close()
