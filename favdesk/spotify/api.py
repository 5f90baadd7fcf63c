"""Spotify Web API basics shared by every caller: timeouts, error mapping, the account.

Spotify answers errors in three shapes: the Web API's `{"error": {"status", "message"}}`,
the accounts service's RFC 6749 `{"error", "error_description"}`, and a plain-text 403 for
users not allow-listed in a development-mode app. All become `SpotifyError`s whose message a
user can act on; no token ever appears in one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from favdesk.errors import (
    NetworkError,
    NotAllowListed,
    RateLimited,
    ReauthRequired,
    SpotifyAuthError,
    SpotifyError,
)
from favdesk.secret import Secret

#: Explicit timeouts on every request: a job timeout cannot interrupt a blocking read.
HTTP_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=30.0)
NOT_ALLOWLISTED = (
    "Spotify refused this account: the Spotify app is in development mode and this user is not "
    "on its allow-list. Add the user under User Management in the Spotify Developer Dashboard, "
    "or use your own Client ID (SPOTIFY_CLIENT_ID)."
)


@dataclass(frozen=True)
class SpotifyUser:
    """The account behind a token: `stable_id` prefers 2026's `account_id` over `id`."""

    id: str
    display_name: str
    account_id: str | None = None

    @property
    def stable_id(self) -> str:
        return self.account_id or self.id


def error_body(response: httpx.Response) -> tuple[str | None, str, dict]:
    """(error code, human message, JSON body or {}) for any of Spotify's three error shapes."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, response.text.strip()[:200], {}
    if not isinstance(body, dict):
        return None, str(body)[:200], {}
    error = body.get("error")
    if isinstance(error, dict):  # Web API shape
        return error.get("reason"), str(error.get("message", "")), error
    if isinstance(error, str):  # RFC 6749 shape
        return error, str(body.get("error_description", "")), body
    return None, str(body)[:200], body


def retry_after_seconds(response: httpx.Response, default: float = 1.0) -> float:
    """Spotify's `Retry-After` header, in seconds."""
    return retry_after_value(response.headers.get("Retry-After"), default)


def retry_after_value(value: str | None, default: float = 1.0) -> float:
    """A `Retry-After` header's value in seconds; `default` when it is missing or unreadable."""
    try:
        return default if value is None else max(0.0, float(value))
    except ValueError:
        return default


def spotify_error(response: httpx.Response) -> SpotifyError:
    """The error to raise for a failed Spotify response (Web API or accounts service)."""
    status = response.status_code
    code, message, _ = error_body(response)
    if status == 403 and "not registered" in message.lower():
        return NotAllowListed(NOT_ALLOWLISTED, status)
    if status == 429:
        wait = retry_after_seconds(response)
        resume_at = datetime.now(UTC) + timedelta(seconds=wait)
        quota = code == "QUOTA_EXCEEDED"
        what = "Spotify's daily quota for this app is used up" if quota else "Spotify rate limit"
        return RateLimited(
            f"{what}: try again after {resume_at:%H:%M} UTC", resume_at=resume_at, quota=quota
        )
    if code == "invalid_grant":
        if "refresh token" in message.lower():
            return ReauthRequired(
                f"Spotify no longer accepts this link ({message}): link Spotify again",
                code,
                status,
            )
        return SpotifyAuthError(
            f"Spotify rejected the login ({message or code}): start the link again; "
            "if it keeps failing, check that REDIRECT_URI matches your app's settings",
            code,
            status,
        )
    if code == "invalid_client":
        return SpotifyAuthError(
            f"Spotify does not know this app ({message or code}): check SPOTIFY_CLIENT_ID "
            "(and SPOTIFY_CLIENT_SECRET if you set one)",
            code,
            status,
        )
    if code:
        detail = f"{code} {message}".strip()
        return SpotifyAuthError(f"Spotify refused the request: {detail}", code, status)
    if status == 401:
        return SpotifyError(f"Spotify did not accept the access token ({message})", status)
    if status >= 500:
        return SpotifyError(f"Spotify is having trouble (HTTP {status}): try again later", status)
    return SpotifyError(f"Spotify answered HTTP {status}: {message or 'no details'}", status)


def network_error(error: httpx.HTTPError, service: str = "Spotify") -> NetworkError:
    """A transport failure, described without the URL (it may carry a code or token)."""
    kind = type(error).__name__
    return NetworkError(f"Could not reach {service} ({kind}): check your internet connection")


def get_me(http: httpx.Client, api_url: str, access_token: Secret) -> SpotifyUser:
    """`GET /me`: the account a token belongs to."""
    try:
        response = http.get(
            f"{api_url}/me",
            headers={"Authorization": f"Bearer {access_token.reveal()}"},
            timeout=HTTP_TIMEOUT,
        )
    except httpx.HTTPError as error:
        raise network_error(error) from None
    if response.status_code != 200:
        raise spotify_error(response)
    body = response.json()
    return SpotifyUser(
        id=body["id"],
        display_name=body.get("display_name") or body["id"],
        account_id=body.get("account_id"),
    )
