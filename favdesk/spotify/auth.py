"""Spotify's accounts service: PKCE, token exchange and refresh, and the token provider.

Desktop apps use Authorization Code with PKCE and no client secret; a secret, when the user
gives one, switches the token calls to HTTP Basic auth. Refresh replies may or may not carry a
new refresh token: a new one is saved, an absent one keeps the old. Tokens travel as `Secret`s.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import string
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from favdesk.errors import (
    ReauthRequired,
    SettingsError,
    SpotifyAuthError,
    SpotifyError,
)
from favdesk.secret import Secret
from favdesk.spotify.api import HTTP_TIMEOUT, network_error, spotify_error
from favdesk.spotify.tokens import Tokens

if TYPE_CHECKING:
    from favdesk.settings import Settings

log = logging.getLogger(__name__)

SCOPE = "user-library-read"
VERIFIER_ALPHABET = string.ascii_letters + string.digits + "-._~"
ACCOUNTS_SERVICE = "Spotify's accounts service"


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


def _tokens_from(body: dict[str, Any], refresh_token: Secret) -> Tokens:
    return Tokens(
        access_token=Secret(body["access_token"]),
        refresh_token=refresh_token,
        expires_at=time.time() + float(body.get("expires_in", 3600)),
        scope=str(body.get("scope", "")),
    )
