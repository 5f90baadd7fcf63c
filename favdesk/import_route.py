"""The web app's import route, in-process: `POST /api/v2/favorites/import/spotify`.

`{code, code_verifier, redirect_uri}` -> `202 {jobId, userId}`, or the route's 4xx/5xx with
`{error}` in plain words. A thin adapter over `importer.start_import`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from favdesk.errors import (
    FavdeskError,
    NetworkError,
    NotAllowListed,
    RedisUnavailable,
    SpotifyAuthError,
    SpotifyError,
)
from favdesk.importer import start_import
from favdesk.secret import Secret
from favdesk.services import Services

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


def import_spotify(
    services: Services, conn: redis.Redis, request: Mapping[str, Any]
) -> ApiResponse:
    """One request -> 202 {jobId, userId}, or 4xx/5xx {error}.

    A request without its code or verifier is refused before Spotify sees the single-use code.
    """
    code = request.get("code")
    if not isinstance(code, str | Secret) or not code:
        return ApiResponse(400, {"error": MISSING_CODE})
    code_verifier = request.get("code_verifier")
    if not isinstance(code_verifier, str) or not code_verifier:
        return ApiResponse(400, {"error": MISSING_VERIFIER})
    try:
        started = start_import(
            services,
            conn,
            code,
            code_verifier=code_verifier,
            redirect_uri=request.get("redirect_uri"),
        )
    except FavdeskError as error:
        return error_response(error)
    return ApiResponse(202, {"jobId": started.job_id, "userId": started.account.user_id})


def error_response(error: FavdeskError) -> ApiResponse:
    """The status the web route gives for each kind of failure."""
    status = 500  # settings, keyring and anything else on favdesk's side
    if isinstance(error, NotAllowListed):
        status = 403
    elif isinstance(error, SpotifyAuthError):
        status = 400
    elif isinstance(error, NetworkError | SpotifyError):
        status = 502
    elif isinstance(error, RedisUnavailable):
        status = 503
    return ApiResponse(status, {"error": str(error)}, error)
