"""The web app's import API, run in-process.

`POST /api/v2/favorites/import/spotify {code}` -> `202 {jobId}`: exchange the code, upsert the
linked account, enqueue the import. Errors answer like the route would, with a status and
`{error}` in plain words. `favdesk link` and the GUI's "Link Spotify" both come through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis

from favdesk import queue
from favdesk.errors import (
    FavdeskError,
    NetworkError,
    NotAllowListed,
    RedisUnavailable,
    SpotifyAuthError,
    SpotifyError,
)
from favdesk.link import complete_link
from favdesk.secret import Secret

if TYPE_CHECKING:
    from favdesk.runtime import Runtime

ROUTE = "POST /api/v2/favorites/import/spotify"
MISSING_CODE = "missing code: send the code from Spotify's redirect"
MISSING_VERIFIER = "missing code_verifier: send the PKCE verifier the login started with"


@dataclass(frozen=True)
class ApiResponse:
    """What the route answers: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)
    #: The error behind a 4xx/5xx, for in-process callers that want its type (never serialised).
    error: FavdeskError | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == 202


def import_spotify(runtime: Runtime, request: Mapping[str, Any]) -> ApiResponse:
    """One request `{code, code_verifier, redirect_uri}` -> 202 {jobId}, or 4xx/5xx {error}.

    A request without its code or verifier is refused before Spotify sees the single-use code.
    """
    code = request.get("code")
    if not isinstance(code, str | Secret) or not code:
        return ApiResponse(400, {"error": MISSING_CODE})
    code_verifier = request.get("code_verifier")
    if not isinstance(code_verifier, str) or not code_verifier:
        return ApiResponse(400, {"error": MISSING_VERIFIER})
    try:
        account = complete_link(
            runtime.settings,
            runtime.spotify_app,
            code,
            code_verifier=code_verifier,
            redirect_uri=request.get("redirect_uri") or runtime.spotify_app.redirect_uri,
            store=runtime.accounts,
        )
    except FavdeskError as error:
        return error_response(error)
    try:
        result = queue.enqueue_import(runtime.app_redis, account.user_id)
    except (redis.RedisError, RedisUnavailable) as error:
        unqueued = RedisUnavailable(
            f"Spotify is linked, but no import was queued: {redis_reason(error)}"
        )
        return ApiResponse(503, {"error": str(unqueued)}, unqueued)
    return ApiResponse(202, {"jobId": result.job_id, "userId": account.user_id})


def error_response(error: FavdeskError) -> ApiResponse:
    """The status the web route gives for each kind of failure."""
    status = 500  # settings, keyring and anything else on favdesk's side
    if isinstance(error, NotAllowListed):
        status = 403
    elif isinstance(error, SpotifyAuthError):
        status = 400
    elif isinstance(error, NetworkError | SpotifyError):
        status = 502
    return ApiResponse(status, {"error": str(error)}, error)


def redis_reason(error: Exception) -> str:
    if isinstance(error, RedisUnavailable):
        return str(error)
    return f"Redis is unreachable ({type(error).__name__}): check UPSTASH_REDIS_URL / REDIS_URL"
