"""Keyring backends for tests: in memory, or in a JSON file shared with CLI subprocesses."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class MemoryKeyring(KeyringBackend):
    """Holds secrets in a dict for the life of one test."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


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
