"""Spotify tokens: their keyring format, and the rules for refreshing and saving them.

`TokenProvider` works against two small protocols, so that it knows nothing of SQLite, the
keyring or HTTP: a `TokenStore` (favdesk's `AccountStore`) and a `TokenRefresher` (the
accounts service client).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from favdesk.errors import (
    KeyringUnavailable,
    NoAccount,
    ReauthRequired,
    SpotifyAuthError,
)
from favdesk.secret import Secret

log = logging.getLogger(__name__)

#: How long rotated tokens may stay unsaved (a keyring locked for a moment) before it is an error.
SAVE_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class Tokens:
    """One token set; `expires_at` is when the access token dies (epoch seconds)."""

    access_token: Secret
    refresh_token: Secret
    expires_at: float
    scope: str = ""

    def expires_within(self, seconds: float) -> bool:
        return time.time() + seconds >= self.expires_at

    def to_json(self) -> str:
        """The keyring entry: access and refresh token together, so one write replaces both."""
        return json.dumps(
            {
                "access_token": self.access_token.reveal(),
                "refresh_token": self.refresh_token.reveal(),
                "expires_at": self.expires_at,
                "scope": self.scope,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Tokens:
        data = json.loads(text)
        return cls(
            access_token=Secret(data["access_token"]),
            refresh_token=Secret(data["refresh_token"]),
            expires_at=float(data["expires_at"]),
            scope=str(data.get("scope", "")),
        )


class TokenStore(Protocol):
    """Where a linked account's tokens live (the keyring, behind `AccountStore`)."""

    def load_tokens(self, spotify_id: str) -> Tokens: ...

    def save_tokens(self, spotify_id: str, tokens: Tokens) -> None: ...

    def mark_needs_relink(self, spotify_id: str, failed: Secret | None = None) -> bool: ...


class TokenRefresher(Protocol):
    """Spotify's token endpoint (`AccountsClient`)."""

    def refresh(self, refresh_token: Secret) -> Tokens: ...


def relink_required(spotify_id: str, status: int | None = None) -> ReauthRequired:
    """The error for a link whose refresh token Spotify no longer accepts."""
    return ReauthRequired(
        f"The Spotify link of {spotify_id} has expired or was revoked: link Spotify again "
        "(`favdesk link`, or Link again in the app)",
        "invalid_grant",
        status,
    )


class TokenProvider:
    """Hands out a valid access token for one linked account, refreshing when needed.

    Thread-safe: when many requests hit a 401 at once, exactly one refresh happens and the
    others get its result. Rotated tokens are saved through the store in one keyring write;
    they are kept in memory first, because the refresh token they replace may be dead already.
    """

    def __init__(
        self,
        accounts: TokenRefresher,
        store: TokenStore,
        spotify_id: str,
        *,
        refresh_margin: float = 60.0,
        save_grace: float = SAVE_GRACE_SECONDS,
    ) -> None:
        self.accounts = accounts
        self.store = store
        self.spotify_id = spotify_id
        self.refresh_margin = refresh_margin
        self.save_grace = save_grace
        self._lock = threading.Lock()
        self._tokens: Tokens | None = None
        self._unsaved_since: float | None = None

    def access_token(self) -> Secret:
        """A token valid for at least `refresh_margin` seconds (refreshed about a minute early)."""
        with self._lock:
            tokens = self._current()
            if tokens.expires_within(self.refresh_margin):
                tokens = self._refresh(tokens)
            return tokens.access_token

    def refresh_after_401(self, rejected: Secret) -> Secret:
        """After Spotify rejected `rejected`: a newer token if there is one, else refresh."""
        with self._lock:
            tokens = self._current()
            if tokens.access_token != rejected:
                return tokens.access_token
            return self._refresh(tokens).access_token

    def _current(self) -> Tokens:
        """The tokens in memory (loaded once); a save that failed earlier is retried first."""
        if self._tokens is None:
            self._tokens = self.store.load_tokens(self.spotify_id)
        elif self._unsaved_since is not None:
            self._save(self._tokens)
        return self._tokens

    def _refresh(self, tokens: Tokens) -> Tokens:
        """Refresh unless another process already did (its tokens are in the store)."""
        if self._unsaved_since is None:  # the store is as new as memory, or newer
            stored = self.store.load_tokens(self.spotify_id)
            if stored.access_token != tokens.access_token and not stored.expires_within(
                self.refresh_margin
            ):
                self._tokens = stored
                return stored
            tokens = stored
        fresh = self._grant(tokens.refresh_token)
        self._tokens = fresh
        log.info("Refreshed the Spotify access token of %s", self.spotify_id)
        self._save(fresh)
        return fresh

    def _grant(self, refresh_token: Secret) -> Tokens:
        """Refresh; after `invalid_grant`, retry once with a token another process saved since."""
        try:
            return self.accounts.refresh(refresh_token)
        except ReauthRequired as error:
            failure = error
        stored = self.store.load_tokens(self.spotify_id)
        if stored.refresh_token != refresh_token:
            log.info(
                "Another process renewed the Spotify link of %s: using its token", self.spotify_id
            )
            try:
                return self.accounts.refresh(stored.refresh_token)
            except ReauthRequired as error:
                failure, refresh_token = error, stored.refresh_token
        if not self.store.mark_needs_relink(self.spotify_id, refresh_token):
            raise SpotifyAuthError(
                f"Another favdesk process renewed the Spotify link of {self.spotify_id} at the "
                "same moment: try again",
                "invalid_grant",
                failure.status,
            )
        raise relink_required(self.spotify_id, failure.status)

    def _save(self, tokens: Tokens) -> None:
        """Save tokens held in memory; a keyring failure is retried on the next call and is an
        error only once it has lasted `save_grace` seconds."""
        try:
            self.store.save_tokens(self.spotify_id, tokens)
        except NoAccount:
            self._tokens = self._unsaved_since = None
            raise
        except KeyringUnavailable:
            self._keep_unsaved()
            return
        if self._unsaved_since is not None:
            log.info("Saved the refreshed Spotify tokens of %s to the keyring", self.spotify_id)
        self._unsaved_since = None

    def _keep_unsaved(self) -> None:
        """Note a failed save; raise `KeyringUnavailable` once the failure outlasts the grace."""
        now = time.monotonic()
        if self._unsaved_since is None:
            self._unsaved_since = now
            log.warning(
                "Could not save the refreshed Spotify tokens of %s to the keyring: keeping them "
                "in memory and retrying",
                self.spotify_id,
            )
        if now - self._unsaved_since >= self.save_grace:
            raise KeyringUnavailable(
                f"The keyring has refused the renewed Spotify tokens of {self.spotify_id} for "
                f"{now - self._unsaved_since:.0f} s: unlock your keyring (favdesk keeps retrying "
                "while it runs; if it stops first, link Spotify again)"
            )
