"""Spotify's accounts service: PKCE, token exchange and refresh, and the token provider.

Desktop apps use Authorization Code with PKCE and no client secret; a secret, when the user
gives one, switches the token calls to HTTP Basic auth. Refresh replies may or may not carry a
new refresh token: a new one is saved, an absent one keeps the old. Tokens travel as `Secret`s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from favdesk.errors import (
    KeyringUnavailable,
    NoAccount,
    ReauthRequired,
    SettingsError,
    SpotifyAuthError,
    SpotifyError,
)
from favdesk.secret import Secret
from favdesk.spotify.api import HTTP_TIMEOUT, network_error, spotify_error

if TYPE_CHECKING:
    from favdesk.accounts import AccountStore
    from favdesk.settings import Settings

log = logging.getLogger(__name__)

SCOPE = "user-library-read"
VERIFIER_ALPHABET = string.ascii_letters + string.digits + "-._~"
ACCOUNTS_SERVICE = "Spotify's accounts service"
#: How long rotated tokens may stay unsaved (a keyring locked for a moment) before it is an error.
SAVE_GRACE_SECONDS = 60.0


def new_verifier(length: int = 64) -> str:
    """A PKCE code verifier: `length` (43-128) random characters of the unreserved set."""
    if not 43 <= length <= 128:
        raise ValueError("a PKCE verifier has 43 to 128 characters")
    return "".join(secrets.choice(VERIFIER_ALPHABET) for _ in range(length))


def code_challenge(verifier: str) -> str:
    """The S256 challenge: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """A high-entropy `state` (256 bits) that ties the redirect to this login."""
    return secrets.token_urlsafe(32)


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


@dataclass(frozen=True)
class SpotifyApp:
    """The Spotify app favdesk logs in with, and where its services live."""

    client_id: str
    client_secret: Secret | None
    accounts_url: str
    api_url: str
    redirect_uri: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SpotifyApp:
        if settings.spotify_client_id is None:
            raise SettingsError(
                "SPOTIFY_CLIENT_ID",
                "is not set: set it to your Spotify app's Client ID, or run in demo mode",
            )
        return cls(
            client_id=settings.spotify_client_id,
            client_secret=settings.spotify_client_secret,
            accounts_url=settings.spotify_accounts_url,
            api_url=settings.spotify_api_url,
            redirect_uri=settings.redirect_uri,
        )


@contextmanager
def http_client(http: httpx.Client | None = None) -> Iterator[httpx.Client]:
    """The caller's client, or a fresh one with explicit timeouts that is closed on exit."""
    if http is not None:
        yield http
        return
    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        yield client


class AccountsClient:
    """Talks to `{accounts}/authorize` and `{accounts}/api/token` for one Spotify app."""

    def __init__(self, app: SpotifyApp, http: httpx.Client | None = None) -> None:
        self.app = app
        self._http = http
        self._owns_http = http is None

    def __enter__(self) -> AccountsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http and self._http is not None:
            self._http.close()
            self._http = None

    def authorize_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        code_challenge: str,
        scope: str = SCOPE,
        show_dialog: bool = False,
    ) -> str:
        """The login page URL; `show_dialog` only for an explicit "switch account"."""
        query = {
            "client_id": self.app.client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": scope,
            "code_challenge_method": "S256",
            "code_challenge": code_challenge,
        }
        if show_dialog:
            query["show_dialog"] = "true"
        return f"{self.app.accounts_url}/authorize?{urlencode(query)}"

    def exchange_code(self, code: str | Secret, *, code_verifier: str, redirect_uri: str) -> Tokens:
        """Trade a single-use authorization code for tokens."""
        form = {
            "grant_type": "authorization_code",
            "code": Secret(code).reveal(),
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        body = self._post_token(form)
        if not body.get("refresh_token"):
            raise SpotifyError(f"{ACCOUNTS_SERVICE} sent no refresh token: link Spotify again")
        return _tokens_from(body, Secret(body["refresh_token"]))

    def refresh(self, refresh_token: Secret) -> Tokens:
        """New access token; keeps `refresh_token` when the reply carries no new one."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token.reveal()}
        try:
            body = self._post_token(form)
        except SpotifyAuthError as error:
            if error.error != "invalid_grant" or isinstance(error, ReauthRequired):
                raise
            raise ReauthRequired(
                "Spotify no longer accepts this link: link Spotify again", error.error, error.status
            ) from None
        rotated = body.get("refresh_token")
        return _tokens_from(body, Secret(rotated) if rotated else refresh_token)

    def _post_token(self, form: dict[str, str]) -> dict[str, Any]:
        """POST the token endpoint: Basic auth with a secret, `client_id` in the form with PKCE."""
        if self.app.client_secret:
            auth: httpx.Auth = httpx.BasicAuth(self.app.client_id, self.app.client_secret.reveal())
        else:
            auth = httpx.Auth()  # no Authorization header, not even the client's default one
            form = {**form, "client_id": self.app.client_id}
        try:
            response = self._client().post(
                f"{self.app.accounts_url}/api/token", data=form, auth=auth, timeout=HTTP_TIMEOUT
            )
        except httpx.HTTPError as error:
            raise network_error(error, ACCOUNTS_SERVICE) from None
        if response.status_code != 200:
            raise spotify_error(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise SpotifyError(f"{ACCOUNTS_SERVICE} sent an unexpected reply: try again later")
        return body

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=HTTP_TIMEOUT)
        return self._http


def relink_required(spotify_id: str, status: int | None = None) -> ReauthRequired:
    """The error for a link whose refresh token Spotify no longer accepts."""
    return ReauthRequired(
        f"The Spotify link of {spotify_id} has expired or was revoked: link Spotify again "
        "(`favdesk link`, or Link again in the app)",
        "invalid_grant",
        status,
    )


def _tokens_from(body: dict[str, Any], refresh_token: Secret) -> Tokens:
    return Tokens(
        access_token=Secret(body["access_token"]),
        refresh_token=refresh_token,
        expires_at=time.time() + float(body.get("expires_in", 3600)),
        scope=str(body.get("scope", "")),
    )


class TokenProvider:
    """Hands out a valid access token for one linked account, refreshing when needed.

    Thread-safe: when many requests hit a 401 at once, exactly one refresh happens and the
    others get its result. Rotated tokens are saved through the store in one keyring write;
    they are kept in memory first, because the refresh token they replace may be dead already.
    """

    def __init__(
        self,
        accounts: AccountsClient,
        store: AccountStore,
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
