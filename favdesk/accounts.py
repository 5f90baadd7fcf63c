"""Linked Spotify accounts: details in a small SQLite database, tokens only in the OS keyring.

Accounts are keyed by Spotify's stable `account_id` when /me gives one, else by `id`
(`SpotifyUser.stable_id`); `id` and the display name are what users see. Each account's tokens
are one JSON keyring entry (username `spotify:{key}`), so a single write replaces access and
refresh token together. Store methods take either the key or the `id`. There is no plain-file
fallback: without a usable keyring backend, linking stops with `KeyringUnavailable`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import KeyringError, PasswordDeleteError

from favdesk.errors import KeyringUnavailable, NoAccount
from favdesk.secret import Secret
from favdesk.settings import KEYRING_SERVICE
from favdesk.spotify.api import SpotifyUser
from favdesk.spotify.tokens import Tokens, relink_required

log = logging.getLogger(__name__)

NO_KEYRING = (
    "No OS keyring is available to store your Spotify tokens: install and unlock a Secret "
    "Service (e.g. gnome-keyring), or choose a backend with PYTHON_KEYRING_BACKEND"
)
#: Backends that cannot keep a secret: `fail` raises on every call, `null` drops everything.
UNUSABLE_BACKENDS = ("keyring.backends.fail.Keyring", "keyring.backends.null.Keyring")
SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_key TEXT PRIMARY KEY,
    spotify_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    token_expires_at REAL NOT NULL,
    authorized_at REAL NOT NULL,
    linked_at REAL NOT NULL,
    needs_relink INTEGER NOT NULL DEFAULT 0
)
"""
COLUMNS = (
    "account_key, spotify_id, user_id, display_name, scopes, token_expires_at, authorized_at, "
    "linked_at, needs_relink"
)
#: One `SELECT {COLUMNS}` row: the columns in order, `needs_relink` as SQLite's 0 or 1.
AccountRow = tuple[str, str, str, str, str, float, float, float, int]
#: The columns of databases made before accounts were keyed by `account_key` (keyed by `id`).


@dataclass(frozen=True)
class Account:
    """A linked Spotify account; times are epoch seconds."""

    spotify_id: str
    user_id: str
    display_name: str
    scopes: str
    token_expires_at: float
    authorized_at: float
    linked_at: float
    needs_relink: bool = False
    account_id: str | None = None

    @property
    def key(self) -> str:
        """What the account is stored under: the stable `account_id` if Spotify gave one."""
        return self.account_id or self.spotify_id


def require_keyring() -> KeyringBackend:
    """The configured keyring backend, or `KeyringUnavailable` if it cannot hold a secret."""
    try:
        backend = keyring.get_keyring()
    except (KeyringError, RuntimeError):
        raise KeyringUnavailable(NO_KEYRING) from None
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if name in UNUSABLE_BACKENDS:
        raise KeyringUnavailable(NO_KEYRING)
    return backend


def check_keyring(service: str = KEYRING_SERVICE) -> None:
    """Fail before the user logs in if tokens could not be saved (no, locked or broken keyring)."""
    with keyring_calls() as backend:
        backend.get_password(service, "spotify:")


@contextmanager
def keyring_calls() -> Iterator[KeyringBackend]:
    """Keyring access that turns any backend failure (no D-Bus, locked, ...) into one clear error.

    Backends raise their own exception types (secretstorage, jeepney, ...), not only
    `KeyringError`, so everything but a missing entry on delete counts as "unavailable".
    """
    backend = require_keyring()
    try:
        yield backend
    except PasswordDeleteError:
        raise
    except Exception as error:  # noqa: BLE001 - backends raise their own types (D-Bus, ...)
        log.debug("keyring backend %s failed: %s", type(backend).__name__, type(error).__name__)
        raise KeyringUnavailable(NO_KEYRING) from None


class AccountStore:
    """Linked accounts. One SQLite connection per call: safe from several threads and processes."""

    def __init__(self, database_path: Path, keyring_service: str = KEYRING_SERVICE) -> None:
        self.database_path = Path(database_path)
        self.keyring_service = keyring_service

    def save_link(self, user: SpotifyUser, tokens: Tokens, user_id: str) -> Account:
        """Store a fresh link (a re-link replaces the tokens and clears `needs_relink`).

        A row of the same Spotify `id` under another key (stored before `account_id` existed)
        is replaced, keyring entry included.
        """
        now = time.time()
        account = Account(
            spotify_id=user.id,
            user_id=user_id,
            display_name=user.display_name,
            scopes=tokens.scope,
            token_expires_at=tokens.expires_at,
            authorized_at=now,
            linked_at=now,
            account_id=user.account_id,
        )
        self._write_tokens(account.key, tokens)
        with self._write_lock() as db:
            replaced = [
                key
                for (key,) in db.execute(
                    "SELECT account_key FROM accounts WHERE spotify_id = ? AND account_key != ?",
                    (account.spotify_id, account.key),
                )
            ]
            db.executemany("DELETE FROM accounts WHERE account_key = ?", [(k,) for k in replaced])
            db.execute(
                f"INSERT OR REPLACE INTO accounts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    account.key,
                    account.spotify_id,
                    account.user_id,
                    account.display_name,
                    account.scopes,
                    account.token_expires_at,
                    account.authorized_at,
                    account.linked_at,
                ),
            )
        for key in replaced:
            self._delete_tokens(key)
        log.debug("Linked Spotify account %s as user %s", account.spotify_id, user_id)
        return account

    def get(self, spotify_id: str) -> Account | None:
        """The account stored under the key `spotify_id`, else the one with that Spotify `id`."""
        return self._one(
            "WHERE account_key = ? OR spotify_id = ? ORDER BY account_key = ? DESC",
            (spotify_id, spotify_id, spotify_id),
        )

    def by_user_id(self, user_id: str) -> Account | None:
        """The most recently linked account stored under `user_id`."""
        return self._one("WHERE user_id = ? ORDER BY linked_at DESC", (user_id,))

    def list(self) -> list[Account]:
        """Every linked account, oldest link first."""
        with self._db() as db:
            rows = db.execute(f"SELECT {COLUMNS} FROM accounts ORDER BY linked_at").fetchall()
        return [_account(row) for row in rows]

    def default(self) -> Account:
        """The single or most recently linked account; `NoAccount` when none is linked."""
        account = self._one("ORDER BY linked_at DESC", ())
        if account is None:
            raise NoAccount(
                "No Spotify account is linked yet: run `favdesk link` or use Link Spotify in "
                "the app"
            )
        return account

    def load_tokens(self, spotify_id: str) -> Tokens:
        """The account's tokens from the keyring; `ReauthRequired` if the link is dead."""
        account = self.get(spotify_id)
        if account is None:
            raise NoAccount(
                f"Spotify account {spotify_id} is not linked: run `favdesk link` or use Link "
                "Spotify in the app"
            )
        if account.needs_relink:
            raise relink_required(spotify_id)
        with keyring_calls() as backend:
            entry = backend.get_password(self.keyring_service, _username(account.key))
        if entry is None:
            raise relink_required(spotify_id)
        return Tokens.from_json(entry)

    def save_tokens(self, spotify_id: str, tokens: Tokens) -> None:
        """Replace the account's tokens (one keyring write) and record the new expiry.

        The row is updated first, under SQLite's write lock, so an unlink cannot slip in between:
        if the account is gone, its keyring entry is deleted and `NoAccount` raised.
        """
        with self._write_lock() as db:
            key = _key(db, spotify_id)
            changed = db.execute(
                "UPDATE accounts SET token_expires_at = ? WHERE account_key = ?",
                (tokens.expires_at, key),
            ).rowcount
            if key is not None and changed == 1:
                self._write_tokens(key, tokens)
                return
        self._delete_tokens(spotify_id)
        raise NoAccount(
            f"Spotify account {spotify_id} was unlinked: its new tokens were not kept. Link it "
            "again to use it"
        )

    def mark_needs_relink(self, spotify_id: str, failed: Secret | None = None) -> bool:
        """Flag the link as dead; with `failed`, only if that is still the stored refresh token.

        The compare-and-set runs under SQLite's write lock, which `save_tokens` also takes, so a
        refresh token another process just saved is never flagged. True if the flag was set.
        """
        with self._write_lock() as db:
            key = _key(db, spotify_id) or spotify_id
            if failed is not None and not self._holds_refresh_token(key, failed):
                return False
            db.execute("UPDATE accounts SET needs_relink = 1 WHERE account_key = ?", (key,))
        log.warning("The Spotify link of %s needs renewing", spotify_id)
        return True

    def remove(self, spotify_id: str) -> None:
        """Forget the account and delete its keyring entry: both, or on error neither."""
        with self._write_lock() as db:
            key = _key(db, spotify_id) or spotify_id
            db.execute("DELETE FROM accounts WHERE account_key = ?", (key,))
            self._delete_tokens(key)

    def _holds_refresh_token(self, key: str, refresh_token: Secret) -> bool:
        """Whether the keyring still holds `refresh_token` (or nothing at all) for the account."""
        with keyring_calls() as backend:
            entry = backend.get_password(self.keyring_service, _username(key))
        return entry is None or Tokens.from_json(entry).refresh_token == refresh_token

    def _delete_tokens(self, key: str) -> None:
        """Delete the account's keyring entry if there is one."""
        username = _username(key)
        with keyring_calls() as backend:
            if backend.get_password(self.keyring_service, username) is not None:
                backend.delete_password(self.keyring_service, username)

    def _write_tokens(self, key: str, tokens: Tokens) -> None:
        with keyring_calls() as backend:
            backend.set_password(self.keyring_service, _username(key), tokens.to_json())

    def _one(self, clause: str, params: tuple) -> Account | None:
        with self._db() as db:
            row = db.execute(f"SELECT {COLUMNS} FROM accounts {clause} LIMIT 1", params).fetchone()
        return _account(row) if row else None

    @contextmanager
    def _write_lock(self) -> Iterator[sqlite3.Connection]:
        """A transaction holding SQLite's write lock from the start (other writers wait)."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            yield db

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection in one transaction; the schema is created on first use."""
        self.database_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.database_path, timeout=30.0)) as db, db:
            db.execute(SCHEMA)
            yield db


def _username(key: str) -> str:
    return f"spotify:{key}"


def _key(db: sqlite3.Connection, spotify_id: str) -> str | None:
    """The key of the account stored under `spotify_id`, else of the one with that `id`."""
    row = db.execute(
        "SELECT account_key FROM accounts WHERE account_key = ? OR spotify_id = ? "
        "ORDER BY account_key = ? DESC LIMIT 1",
        (spotify_id, spotify_id, spotify_id),
    ).fetchone()
    return row[0] if row else None


def _account(row: AccountRow) -> Account:
    key, spotify_id = row[0], row[1]
    return Account(
        spotify_id,
        *row[2:8],
        needs_relink=bool(row[8]),
        account_id=key if key != spotify_id else None,
    )
