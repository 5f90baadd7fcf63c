"""The OS keyring for real: a Secret Service where one runs, and the `fail` backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import keyring
import keyring.core
import pytest
from keyring.backends import SecretService

from favdesk.accounts import NO_KEYRING, AccountStore, require_keyring
from favdesk.secret import Secret
from favdesk.spotify.api import SpotifyUser
from favdesk.spotify.tokens import Tokens

#: Read at import: the autouse fixture clears FAVDESK_* variables before each test runs.
REAL_KEYRING = os.environ.get("FAVDESK_REAL_KEYRING") == "1"
USER = SpotifyUser(id="real-keyring-user", display_name="Real Keyring")
#: Saves a link with the store in a fresh process, as `favdesk link` would.
SAVE_LINK = """
import sys, time
from pathlib import Path
from favdesk.accounts import AccountStore
from favdesk.errors import KeyringUnavailable
from favdesk.secret import Secret
from favdesk.spotify.api import SpotifyUser
from favdesk.spotify.auth import SCOPE
from favdesk.spotify.tokens import Tokens
tokens = Tokens(Secret("access-LEAK-1"), Secret("refresh-LEAK-1"), time.time() + 3600)
try:
    AccountStore(Path(sys.argv[1])).save_link(SpotifyUser("u", "U"), tokens, "u")
except KeyringUnavailable as error:
    print(error)
    raise SystemExit(3)
"""
#: Reads the tokens back in another process.
LOAD_TOKENS = """
import sys
from pathlib import Path
from favdesk.accounts import AccountStore
tokens = AccountStore(Path(sys.argv[1]), keyring_service=sys.argv[2]).load_tokens(sys.argv[3])
print(tokens.refresh_token.reveal())
"""


@pytest.fixture
def machine_keyring():
    """The machine's own backend: an earlier test's fixture may have left the test one active."""
    previous = keyring.get_keyring()
    keyring.core.init_backend()
    yield require_keyring()
    keyring.set_keyring(previous)


def python(code: str, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.real_keyring
@pytest.mark.skipif(
    not REAL_KEYRING,
    reason="needs a real Secret Service: set FAVDESK_REAL_KEYRING=1 under dbus-run-session with "
    "an unlocked gnome-keyring-daemon (the test runner does)",
)
def test_tokens_round_trip_through_the_real_secret_service(tmp_path, machine_keyring):
    secret_service = SecretService.Keyring()
    service = f"favdesk-test-{uuid.uuid4().hex}"
    store = AccountStore(tmp_path / "favdesk.sqlite3", keyring_service=service)
    linked = Tokens(
        Secret("access-1"), Secret("refresh-1"), time.time() + 3600, "user-library-read"
    )
    rotated = Tokens(
        Secret("access-2"), Secret("refresh-2"), time.time() + 3600, "user-library-read"
    )
    try:
        store.save_link(USER, linked, user_id=USER.id)
        assert store.load_tokens(USER.id) == linked
        store.save_tokens(USER.id, rotated)
        assert store.load_tokens(USER.id) == rotated
        entry = json.loads(secret_service.get_password(service, f"spotify:{USER.id}"))
        assert entry["refresh_token"] == "refresh-2"
        other = python(LOAD_TOKENS, str(store.database_path), service, USER.id)
        assert other.returncode == 0, other.stderr
        assert other.stdout.strip() == "refresh-2"
    finally:
        store.remove(USER.id)
    assert secret_service.get_password(service, f"spotify:{USER.id}") is None


def test_fail_backend_is_keyring_unavailable_and_writes_no_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    before = sorted(tmp_path.rglob("*"))
    result = python(SAVE_LINK, str(tmp_path / "data" / "favdesk.sqlite3"), env=env)
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == NO_KEYRING
    assert "LEAK" not in result.stdout + result.stderr
    assert sorted(tmp_path.rglob("*")) == before
