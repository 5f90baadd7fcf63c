"""One exception hierarchy: every error carries a message a user can act on.

Messages never contain a token, a secret or a signed URL. Errors are caught at the edge
(CLI exit code, GUI banner, job status), not in the middle.
"""

from __future__ import annotations

from datetime import datetime


class FavdeskError(Exception):
    """Base of every error favdesk raises on purpose; `str(e)` is the user-facing message."""

    exit_code = 1
    #: Short machine-readable reason, used in `fav:sync:{userId}` as `error:<reason>`.
    reason = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SettingsError(FavdeskError):
    """A setting is missing or malformed; the message names the variable and the fix."""

    exit_code = 2
    reason = "settings"

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


class KeyringUnavailable(FavdeskError):
    """No usable OS keyring: tokens are never written to a plain file instead."""

    reason = "keyring"


class LinkError(FavdeskError):
    """The browser login did not complete."""

    reason = "link"


class PortBusy(LinkError):
    """The loopback callback port is taken by another program."""


class LinkTimeout(LinkError):
    """No redirect came back in time."""


class LinkDeclined(LinkError):
    """The user pressed Cancel on Spotify's consent page."""

    reason = "declined"


class LinkCancelled(LinkError):
    """The user cancelled the wait in favdesk itself."""

    reason = "cancelled"


class StateMismatch(LinkError):
    """A redirect came back with a wrong or missing `state`."""


class SpotifyError(FavdeskError):
    """Spotify answered with an error, or could not be reached."""

    reason = "spotify"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SpotifyAuthError(SpotifyError):
    """The accounts service refused a token request (`invalid_grant`, `invalid_client`, ...)."""

    reason = "auth"

    def __init__(self, message: str, error: str, status: int | None = None) -> None:
        super().__init__(message, status)
        self.error = error


class ReauthRequired(SpotifyAuthError):
    """The refresh token is expired or revoked: only linking again helps."""

    reason = "reauth"


class NotAllowListed(SpotifyError):
    """A development-mode Spotify app refused a user who is not on its allow-list."""

    reason = "notallowed"


class RateLimited(SpotifyError):
    """Spotify asked us to wait longer than a job may sleep; resume at `resume_at` (UTC)."""

    reason = "ratelimited"

    def __init__(self, message: str, resume_at: datetime, quota: bool = False) -> None:
        super().__init__(message, 429)
        self.resume_at = resume_at
        self.quota = quota


class NetworkError(FavdeskError):
    """A service could not be reached (DNS, refused connection, timeout)."""

    reason = "network"


class FetchCancelled(FavdeskError):
    """The user stopped an import between pages; fetched pages are kept for a resume."""

    reason = "cancelled"


class TakenOver(FavdeskError):
    """Another worker took this run's job over (this one slept past its heartbeat): the run
    ends without uploading or writing the status, which are the other run's now."""


class NoAccount(FavdeskError):
    """No linked Spotify account for this user."""

    reason = "noaccount"


class StorageError(FavdeskError):
    """Storage refused or failed an operation."""

    reason = "storage"

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


class FileTooLarge(StorageError):
    """The day's file is over a limit of the storage (the project's or the bucket's)."""

    reason = "toolarge"

    def __init__(self, message: str, size: int, limit: int | None) -> None:
        super().__init__(message, status="413")
        self.size = size
        self.limit = limit


class SnapshotUnreadable(StorageError):
    """A stored snapshot is not the JSON array of saved tracks favdesk writes."""


class RedisUnavailable(FavdeskError):
    """Redis could not be reached or started."""

    reason = "redis"


class RedisUrlRequired(RedisUnavailable):
    """favdesk cannot run its own Redis here (Windows, no redis-server): a URL is needed."""

    exit_code = 2


class QueueError(FavdeskError):
    """A queue operation that the job's current state does not allow (retry, delete)."""

    reason = "queue"
