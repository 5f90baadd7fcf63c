"""The sync status a user sees, `fav:sync:{userId}`, and the progress of their import.

The values are the web app's (`syncing`, `done`, `error:<reason>`); each write is one round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import redis
from redis.typing import EncodableT, FieldT

from favdesk.keys import RETRY_KEY, progress_key, sync_key
from favdesk.queue import JOB_TIMEOUT
from favdesk.redisconn import redis_call

#: How long `done` / `error:*` stay readable; `syncing` outlives the job timeout only a little.
STATUS_TTL = 30 * 24 * 3600
SYNCING_TTL = JOB_TIMEOUT + 600


class SyncState(StrEnum):
    """The states of `fav:sync:{userId}`; the values are what the web app writes."""

    IDLE = "idle"  # no key
    SYNCING = "syncing"
    DONE = "done"
    ERROR = "error"


class SyncErrorReason(StrEnum):
    """The reasons favdesk writes as `error:<reason>`: each `FavdeskError.reason`, and more."""

    FAILED = "failed"
    SETTINGS = "settings"
    KEYRING = "keyring"
    LINK = "link"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    SPOTIFY = "spotify"
    AUTH = "auth"
    REAUTH = "reauth"
    NOT_ALLOWED = "notallowed"
    RATE_LIMITED = "ratelimited"
    NETWORK = "network"
    NO_ACCOUNT = "noaccount"
    STORAGE = "storage"
    TOO_LARGE = "toolarge"
    REDIS = "redis"
    QUEUE = "queue"
    WORKER_DIED = "workerdied"  # recovery gave up on a job whose workers kept dying


@dataclass(frozen=True)
class SyncStatus:
    """A parsed `fav:sync:{userId}` value, e.g. `error:ratelimited:2026-11-29T10:00:00Z`."""

    state: SyncState
    reason: str | None = None
    resume_at: datetime | None = None
    raw: str | None = None

    @classmethod
    def parse(cls, raw: bytes | str | None) -> SyncStatus:
        """Read a stored value; an unknown value is an error whose reason is the value itself."""
        if raw is None:
            return cls(SyncState.IDLE)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if text in (SyncState.SYNCING.value, SyncState.DONE.value):
            return cls(SyncState(text), raw=text)
        if not text.startswith("error:"):
            return cls(SyncState.ERROR, reason=text, raw=text)
        detail = text.removeprefix("error:")
        reason, _, rest = detail.partition(":")
        resume_at = parse_time(rest)
        if resume_at is None:
            return cls(SyncState.ERROR, reason=detail or None, raw=text)
        return cls(SyncState.ERROR, reason=reason, resume_at=resume_at, raw=text)

    @property
    def reason_kind(self) -> SyncErrorReason | None:
        """The reason (before any `:detail`) as favdesk writes it; None for no or another reason."""
        if self.reason is None:
            return None
        try:
            return SyncErrorReason(self.reason.partition(":")[0])
        except ValueError:
            return None

    @property
    def value(self) -> str | None:
        """The string to store (None for IDLE, which is "no key")."""
        if self.state is SyncState.IDLE:
            return None
        if self.state is not SyncState.ERROR:
            return self.state.value
        reason = self.reason or SyncErrorReason.FAILED
        if self.resume_at is not None:
            return f"error:{reason}:{format_time(self.resume_at)}"
        return f"error:{reason}"


def format_time(moment: datetime) -> str:
    """UTC, second precision, `Z` suffix: the form used in status values."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@redis_call
def set_sync_status(
    conn: redis.Redis, user_id: str, value: str | SyncState | SyncStatus
) -> SyncStatus:
    """Write `fav:sync:{userId}` (one round trip); `done` also clears a pending retry."""
    status = value if isinstance(value, SyncStatus) else SyncStatus.parse(_as_value(value))
    stored = status.value
    pipe = conn.pipeline(transaction=False)
    if stored is None:
        pipe.delete(sync_key(user_id))
    else:
        ttl = SYNCING_TTL if status.state is SyncState.SYNCING else STATUS_TTL
        pipe.set(sync_key(user_id), stored, ex=ttl)
    if status.state is SyncState.DONE:
        pipe.zrem(RETRY_KEY, user_id)  # done: no retry is owed
        pipe.hset(progress_key(user_id), "done_at", format_time(datetime.now(UTC)))
        pipe.expire(progress_key(user_id), STATUS_TTL)
    pipe.execute()
    return status


def _as_value(value: str | SyncState) -> str | None:
    if isinstance(value, SyncState):
        return None if value is SyncState.IDLE else value.value
    return None if value == SyncState.IDLE.value else value


@redis_call
def get_sync_status(conn: redis.Redis, user_id: str) -> SyncStatus:
    return SyncStatus.parse(conn.get(sync_key(user_id)))


@dataclass(frozen=True)
class Progress:
    """The last progress a job wrote for a user, and when the last import finished."""

    fetched: int
    total: int
    phase: str
    job_id: str | None
    updated_at: datetime | None
    done_at: datetime | None

    @classmethod
    def parse(cls, fields: Mapping[bytes, bytes]) -> Progress | None:
        if not fields:
            return None
        text = {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
        return cls(
            fetched=int(text.get("fetched", 0) or 0),
            total=int(text.get("total", 0) or 0),
            phase=text.get("phase", ""),
            job_id=text.get("job_id") or None,
            updated_at=parse_time(text.get("updated_at", "")),
            done_at=parse_time(text.get("done_at", "")),
        )


@redis_call
def set_progress(
    conn: redis.Redis, user_id: str, job_id: str, fetched: int, total: int, phase: str
) -> None:
    """Write the progress hash (2 commands, 1 round trip); callers throttle to about 1/s."""
    fields: dict[FieldT, EncodableT] = {
        "fetched": fetched,
        "total": total,
        "phase": phase,
        "job_id": job_id,
        "updated_at": format_time(datetime.now(UTC)),
    }
    pipe = conn.pipeline(transaction=False)
    pipe.hset(progress_key(user_id), mapping=fields)
    pipe.expire(progress_key(user_id), STATUS_TTL)
    pipe.execute()
