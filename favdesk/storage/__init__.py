"""Where raw exports go: one key layout, one protocol, two backends (Supabase, local folder).

A user's export is `favorites_raw/spotify/{userId}/{YYYY-MM-DD}.json`; both backends keep
that layout, so the dashboard and the worker do not care which one is configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from favdesk.errors import SettingsError, StorageError
from favdesk.progress import megabytes as _megabytes
from favdesk.settings import USER_ID_RULE, is_user_id

if TYPE_CHECKING:
    from favdesk.settings import Settings

BUCKET = "favorites_raw"
_DAY_FILE = re.compile(r"(\d{4}-\d{2}-\d{2})\.json")


@dataclass(frozen=True)
class StoredFile:
    """One stored export as a listing shows it."""

    key: str
    name: str
    size: int
    updated_at: datetime
    #: The object's version as Storage tags it (None where the backend has no such tag).
    etag: str | None = None

    @property
    def path(self) -> str:
        """Bucket and key, as the worker's log line and the dashboard show it."""
        return f"{BUCKET}/{self.key}"

    @property
    def day(self) -> date | None:
        """The export's date, read from a `YYYY-MM-DD.json` name (None for other names)."""
        match = _DAY_FILE.fullmatch(self.name)
        if match is None:
            return None
        try:
            return date.fromisoformat(match.group(1))
        except ValueError:
            return None


class Storage(Protocol):
    """What the worker and the dashboard need from a storage backend."""

    #: Where files go, for messages and the UI (never a key or a token).
    description: str

    def ensure_bucket(self) -> None:
        """Make sure the private bucket exists, creating it if needed."""
        ...

    def upload_file(
        self, key: str, source: Path, on_progress: Callable[[int, int], None] | None = None
    ) -> StoredFile:
        """Store the JSON file `source` under `key`, streamed from disk, replacing an existing
        object of that key; `on_progress(sent, size)` in bytes as it goes."""
        ...

    def list_files(self, user_id: str) -> list[StoredFile]:
        """The user's files, newest date first."""
        ...

    def download(self, key: str) -> bytes:
        """The exact bytes stored under `key`."""
        ...

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """The bytes stored under `key` as a stream read piece by piece (files of any size)."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object stored under `key` (nothing happens if there is none)."""
        ...

    def close(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...


def check_user_id(user_id: str) -> str:
    """A user id is one safe key segment (`settings.is_user_id`)."""
    if not isinstance(user_id, str) or not is_user_id(user_id):
        raise StorageError(
            f"{user_id!r} cannot be used in a storage key: a user id may hold only "
            f"{USER_ID_RULE} (set FAVDESK_USER_ID to such a value)"
        )
    return user_id


def check_key(key: str) -> str:
    """A key is `/`-separated segments each as safe as a user id: no leading `/`, no empty,
    `.` or `..` segment."""
    if not isinstance(key, str) or not all(is_user_id(part) for part in key.split("/")):
        raise StorageError(
            f"{key!r} is not a valid storage key: use segments of {USER_ID_RULE}, separated by '/'"
        )
    return key


def raw_key(user_id: str, day: date) -> str:
    """The key of a user's export for one day: `spotify/{user_id}/{YYYY-MM-DD}.json`."""
    return f"spotify/{check_user_id(user_id)}/{day.isoformat()}.json"


def user_prefix(user_id: str) -> str:
    """The folder holding a user's exports."""
    return f"spotify/{check_user_id(user_id)}"


def megabytes(size: int) -> str:
    """A size as Supabase's dashboard shows it (MB of 1024 * 1024 bytes)."""
    return f"{_megabytes(size, 0)} MB"


def open_storage(settings: Settings) -> Storage:
    """Supabase Storage when a Supabase URL is configured, else the local folder."""
    if settings.supabase_url is None:
        from favdesk.storage.local import LocalStorage

        return LocalStorage(settings.storage_dir)
    if settings.supabase_service_role_key is None:
        raise SettingsError(
            "SUPABASE_SERVICE_ROLE_KEY", "is missing: Supabase Storage needs the service-role key"
        )
    from favdesk.storage.supabase import SupabaseStorage

    return SupabaseStorage(settings.supabase_url, settings.supabase_service_role_key)
