"""The Spotify stand-in's accounts service: `/authorize` and `/api/token`.

Authorization codes with PKCE (S256) or a client secret, redirect URIs checked the way Spotify
checks them (exact, except any port on a registered loopback IP; `localhost` refused), access
tokens that expire, refresh grants that rotate, expire or get revoked, and RFC 6749 errors.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from urllib.parse import parse_qsl, urlencode, urlsplit

from favdesk.sandbox.server import Reply, json_reply
from favdesk.sandbox.spotify_faults import Faults, Stats

REFRESH_TOKEN_LIFETIME = 182 * 86400.0
_LOOPBACK_HOSTS = {"127.0.0.1", "::1"}


@dataclass
class _Code:
    redirect_uri: str
    scope: str
    challenge: str | None
    issued_at: float


@dataclass
class _RefreshGrant:
    """One refresh token; `state` is active, revoked (also: rotated away) or expired."""

    scope: str
    authorized_at: float
    state: str = "active"


@dataclass
class AccessToken:
    """One access token as issued: what it may do and until when."""

    scope: str
    expires_at: float


class _OAuthError(Exception):
    """An RFC 6749 token-endpoint error."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class AccountsService:
    """Issues codes and tokens for one registered app; the Web API checks tokens here.

    `lock` guards every grant and token (the server shares it with the Web API);
    `save_state` is called with it held whenever the refresh grants change.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str | None,
        redirect_uris: tuple[str, ...],
        faults: Faults,
        stats: Stats,
        lock: threading.RLock,
        save_state: Callable[[], None],
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris
        self.faults = faults
        self.stats = stats
        self.last_authorize: dict[str, str] | None = None
        #: Put into every code and token issued, so a test can look for any of them where no
        #: secret may be (logs, files, output).
        self.token_marker = ""
        self._lock = lock
        self._save_state = save_state
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, _RefreshGrant] = {}

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: Message, body: bytes
    ) -> Reply:
        """Answer one request to the accounts host."""
        if path == "/authorize" and method == "GET":
            return self._authorize(query)
        if path == "/api/token" and method == "POST":
            return self._token(headers, body)
        return _html(404, "Not found")

    def access_token(self, token: str) -> AccessToken | None:
        """The access token as issued, or None if this service never issued it."""
        with self._lock:
            return self._access.get(token)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now."""
        now = time.time()
        with self._lock:
            for token in self._access.values():
                token.expires_at = min(token.expires_at, now)

    def end_refresh_tokens(self, state: str) -> None:
        """Every active refresh token becomes `state`: "revoked" or "expired"."""
        with self._lock:
            for grant in self._refresh.values():
                if grant.state == "active":
                    grant.state = state
            self._save_state()

    def refresh_state(self) -> dict[str, dict]:
        """The refresh tokens in their saved form (call with the lock held)."""
        return {
            token: {"scope": g.scope, "authorized_at": g.authorized_at, "state": g.state}
            for token, g in self._refresh.items()
        }

    def restore_refresh_state(self, state: dict[str, dict]) -> None:
        """Take back refresh tokens saved by `refresh_state`."""
        with self._lock:
            for token, grant in state.items():
                self._refresh[token] = _RefreshGrant(**grant)

    # -- /authorize --------------------------------------------------------------------------

    def _authorize(self, query: dict[str, str]) -> Reply:
        self.stats.bump("authorize_requests")
        self.last_authorize = dict(query)
        if query.get("client_id") != self.client_id:
            return _html(400, "INVALID_CLIENT: Invalid client")
        redirect_uri = query.get("redirect_uri", "")
        if urlsplit(redirect_uri).hostname == "localhost":
            return _html(400, "INVALID_CLIENT: Invalid redirect URI")
        if not _redirect_allowed(redirect_uri, self.redirect_uris):
            return _html(400, "INVALID_CLIENT: Invalid redirect URI")
        state = query.get("state")
        error = self._authorize_error(query)
        if error:
            return _redirect(redirect_uri, {"error": error}, state)
        challenge = query.get("code_challenge") or None
        code = self.token_marker + secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(
                redirect_uri=redirect_uri,
                scope=query.get("scope", ""),
                challenge=challenge,
                issued_at=time.time(),
            )
        return _redirect(redirect_uri, {"code": code}, state)

    def _authorize_error(self, query: dict[str, str]) -> str | None:
        """The OAuth error to redirect back with, if any."""
        if query.get("response_type") != "code":
            return "unsupported_response_type"
        pkce = query.get("code_challenge_method") == "S256" and query.get("code_challenge")
        if not pkce and (self.client_secret is None or "code_challenge" in query):
            return "invalid_request"
        if self.faults.decline:
            return "access_denied"
        return None

    # -- /api/token --------------------------------------------------------------------------

    def _token(self, headers: Message, body: bytes) -> Reply:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        grant_type = form.get("grant_type", "")
        self.stats.bump_grant(grant_type or "missing")
        try:
            basic = self._basic_client(headers.get("Authorization"))
            client_id = basic or form.get("client_id")
            if client_id != self.client_id:
                raise _OAuthError("invalid_client", "Invalid client")
            if grant_type == "authorization_code":
                return json_reply(200, self._exchange_code(form, authenticated=basic is not None))
            if grant_type == "refresh_token":
                return json_reply(200, self._refresh_grant(form))
            if not grant_type:
                raise _OAuthError("invalid_request", "grant_type must be provided")
            raise _OAuthError(
                "unsupported_grant_type",
                "grant_type parameter is missing or unsupported",
            )
        except _OAuthError as error:
            return json_reply(400, {"error": error.error, "error_description": error.description})

    def _basic_client(self, header: str | None) -> str | None:
        """The client id from an `Authorization: Basic` header, after checking the secret."""
        if not header:
            return None
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise _OAuthError("invalid_client", "Invalid client")
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            raise _OAuthError("invalid_client", "Invalid client") from None
        if self.client_secret is None or secret != self.client_secret:
            raise _OAuthError("invalid_client", "Invalid client secret")
        return client_id

    def _exchange_code(self, form: dict[str, str], *, authenticated: bool) -> dict:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)
        if code is None:
            raise _OAuthError("invalid_grant", "Invalid authorization code")
        if time.time() - code.issued_at > self.faults.code_ttl:
            raise _OAuthError("invalid_grant", "Authorization code expired")
        if form.get("redirect_uri") != code.redirect_uri:
            raise _OAuthError("invalid_grant", "Invalid redirect URI")
        verifier = form.get("code_verifier")
        pkce_required = code.challenge is not None or not authenticated
        if pkce_required and (not verifier or _s256(verifier) != code.challenge):
            raise _OAuthError("invalid_grant", "code_verifier was incorrect")
        refresh_token = "AQ" + self.token_marker + secrets.token_urlsafe(48)
        with self._lock:
            self._refresh[refresh_token] = _RefreshGrant(code.scope, time.time())
            self._save_state()
        return {**self._issue_access(code.scope), "refresh_token": refresh_token}

    def _refresh_grant(self, form: dict[str, str]) -> dict:
        token = form.get("refresh_token")
        if not token:
            raise _OAuthError("invalid_request", "refresh_token must be supplied")
        with self._lock:
            grant = self._refresh.get(token)
            if grant is None:
                raise _OAuthError("invalid_grant", "Invalid refresh token")
            if grant.state == "active" and time.time() - grant.authorized_at > (
                REFRESH_TOKEN_LIFETIME
            ):
                grant.state = "expired"
            if grant.state != "active":
                raise _OAuthError("invalid_grant", f"Refresh token {grant.state}")
            reply = self._issue_access(grant.scope)
            if self.faults.rotate_refresh_tokens:
                rotated = "AQ" + self.token_marker + secrets.token_urlsafe(48)
                self._refresh[rotated] = _RefreshGrant(grant.scope, grant.authorized_at)
                grant.state = "revoked"
                reply["refresh_token"] = rotated
                self._save_state()
        return reply

    def _issue_access(self, scope: str) -> dict:
        ttl = self.faults.access_token_ttl
        token = "BQ" + self.token_marker + secrets.token_urlsafe(64)
        with self._lock:
            self._access[token] = AccessToken(scope, time.time() + ttl)
        return {"access_token": token, "token_type": "Bearer", "scope": scope, "expires_in": ttl}


def _redirect(redirect_uri: str, params: dict[str, str], state: str | None) -> Reply:
    if state is not None:
        params["state"] = state
    separator = "&" if "?" in redirect_uri else "?"
    location = f"{redirect_uri}{separator}{urlencode(params)}"
    return Reply(302, b"", "text/plain", {"Location": location})


def _html(status: int, text: str) -> Reply:
    page = f"<!doctype html><title>Spotify</title><h1>{text}</h1>"
    return Reply(status, page.encode(), "text/html; charset=utf-8")


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _redirect_allowed(requested: str, registered: tuple[str, ...]) -> bool:
    """Exact match, except that a loopback IP registered without a port accepts any port."""
    if requested in registered:
        return True
    asked = urlsplit(requested)
    for uri in registered:
        allowed = urlsplit(uri)
        if allowed.hostname not in _LOOPBACK_HOSTS:
            continue
        if allowed.port is not None or asked.port is None:
            continue
        same = (asked.scheme, asked.hostname, asked.path, asked.query) == (
            allowed.scheme,
            allowed.hostname,
            allowed.path,
            allowed.query,
        )
        if same:
            return True
    return False
