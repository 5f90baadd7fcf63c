"""A test keyring kept in a JSON file, so that CLI subprocesses share the test's entries."""

from __future__ import annotations

import json
import os
from pathlib import Path

from favdesk.sandbox.memkeyring import MemoryKeyring


class FileKeyring(MemoryKeyring):
    """Test-only: keeps entries in $FAVDESK_TEST_KEYRING_FILE so a subprocess sees them."""

    @property
    def path(self) -> Path:
        return Path(os.environ["FAVDESK_TEST_KEYRING_FILE"])

    def _load(self) -> None:
        data = json.loads(self.path.read_text()) if self.path.exists() else []
        self.entries = {(s, u): p for s, u, p in data}

    def _save(self) -> None:
        self.path.write_text(json.dumps([[s, u, p] for (s, u), p in self.entries.items()]))

    def get_password(self, service: str, username: str) -> str | None:
        self._load()
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._load()
        super().set_password(service, username, password)
        self._save()

    def delete_password(self, service: str, username: str) -> None:
        self._load()
        super().delete_password(service, username)
        self._save()


class FlakyKeyring(MemoryKeyring):
    """Test-only: an in-memory keyring whose writes fail while `refuse_writes` is set, like a
    Secret Service locked for a moment (screen lock, D-Bus hiccup)."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_writes = False

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.refuse_writes:
            raise RuntimeError("org.freedesktop.Secret.Error.IsLocked")
        super().set_password(service, username, password)
