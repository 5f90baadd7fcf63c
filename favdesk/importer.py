"""Start an import from a Spotify login: exchange the code, link the account, queue the job.

The typed core of the web app's import route; `import_route.py` answers in the route's
`202 {jobId}` shape over it. `favdesk link` and the GUI's "Link Spotify" both come through here.
"""

from __future__ import annotations

import redis

from favdesk import queue
from favdesk.errors import RedisUnavailable
from favdesk.link import LinkResult, complete_link
from favdesk.secret import Secret
from favdesk.services import Services


def start_import(
    services: Services,
    conn: redis.Redis,
    code: str | Secret,
    *,
    code_verifier: str,
    redirect_uri: str | None = None,
) -> LinkResult:
    """Link the account behind `code`, then queue its import; the job id is in the result.

    A Redis that is down after the link leaves the account linked and says so.
    """
    account = complete_link(
        services.settings,
        services.spotify_app,
        code,
        code_verifier=code_verifier,
        redirect_uri=redirect_uri or services.spotify_app.redirect_uri,
        store=services.accounts,
    )
    try:
        result = queue.enqueue_import(conn, account.user_id)
    except (redis.RedisError, RedisUnavailable) as error:
        raise RedisUnavailable(
            f"Spotify is linked, but no import was queued: {redis_reason(error)}"
        ) from None
    return LinkResult(account, result.job_id)


def redis_reason(error: Exception) -> str:
    if isinstance(error, RedisUnavailable):
        return str(error)
    return f"Redis is unreachable ({type(error).__name__}): check UPSTASH_REDIS_URL / REDIS_URL"
