"""What the queue holds, for the dashboard, `favdesk status` and `sync --wait`.

Every read is one pipelined round trip (two for the jobs table): hosted Redis bills each
command, and a dashboard reads this every few seconds while it is visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from favdesk.keys import (
    QUEUE_KEY,
    QUEUE_PAUSED_KEY,
    REGISTRY_KEYS,
    job_key,
    progress_key,
    sync_key,
)
from favdesk.queue import QueuePause, job_user_id
from favdesk.redisconn import redis_call
from favdesk.sync_status import Progress, SyncStatus


@dataclass(frozen=True)
class UserStatus:
    user_id: str
    sync: SyncStatus
    progress: Progress | None


@dataclass(frozen=True)
class QueueSnapshot:
    """Queue depth by state and each user's status, read in one round trip."""

    queued: int
    started: int
    finished: int
    failed: int
    deferred: int
    scheduled: int
    users: dict[str, UserStatus]
    #: The queue is paused for every favdesk worker (None: it is not).
    paused: QueuePause | None = None


@redis_call
def queue_snapshot(conn: redis.Redis, user_ids: Iterable[str] = ()) -> QueueSnapshot:
    """One `pipeline(transaction=False)`: LLEN, 5 x ZCARD, GET of the pause, then GET +
    HGETALL per user."""
    users = list(dict.fromkeys(user_ids))
    pipe = conn.pipeline(transaction=False)
    pipe.llen(QUEUE_KEY)
    for key in REGISTRY_KEYS.values():
        pipe.zcard(key)
    pipe.get(QUEUE_PAUSED_KEY)
    for user_id in users:
        pipe.get(sync_key(user_id))
        pipe.hgetall(progress_key(user_id))
    replies = pipe.execute()
    counts = dict(zip(["queued", *REGISTRY_KEYS], replies[:6], strict=True))
    paused = QueuePause.parse(replies[6])
    per_user = replies[7:]
    statuses = {
        user_id: UserStatus(
            user_id, SyncStatus.parse(per_user[2 * i]), Progress.parse(per_user[2 * i + 1])
        )
        for i, user_id in enumerate(users)
    }
    return QueueSnapshot(**counts, users=statuses, paused=paused)


@dataclass(frozen=True)
class JobInfo:
    """One row of the recent-jobs table."""

    id: str
    user_id: str | None
    state: JobStatus
    enqueued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    tracks: int | None
    error: str | None


@redis_call
def recent_jobs(conn: redis.Redis, limit: int = 20) -> list[JobInfo]:
    """The newest jobs of every state, newest first: two pipelined round trips."""
    pipe = conn.pipeline(transaction=False)
    pipe.lrange(QUEUE_KEY, 0, limit - 1)
    for name, key in REGISTRY_KEYS.items():
        if name in ("finished", "failed"):
            pipe.zrevrange(key, 0, limit - 1)
        else:
            pipe.zrange(key, 0, limit - 1)
    ids = dict.fromkeys(_job_id(member) for reply in pipe.execute() for member in reply)
    pipe = conn.pipeline(transaction=False)
    for job_id in ids:
        pipe.hgetall(job_key(job_id))
    jobs = [_job_info(conn, job_id, raw) for job_id, raw in zip(ids, pipe.execute(), strict=True)]
    known = [info for info in jobs if info is not None]
    known.sort(key=_recency, reverse=True)
    return known[:limit]


def _job_id(member: bytes) -> str:
    """Started-registry members are `job_id:execution_id`; the others are plain ids."""
    return member.decode().partition(":")[0]


def _job_info(conn: redis.Redis, job_id: str, raw: dict[bytes, bytes]) -> JobInfo | None:
    if not raw:
        return None
    job = Job(job_id, connection=conn)
    try:
        job.restore(raw)
    except (NoSuchJobError, ValueError):
        return None
    meta = job.meta if isinstance(job.meta, dict) else {}
    duration = None
    if job.started_at and job.ended_at:
        duration = (job.ended_at - job.started_at).total_seconds()
    return JobInfo(
        id=job_id,
        user_id=job_user_id(job),
        state=job.get_status(refresh=False),
        enqueued_at=_aware(job.enqueued_at),
        started_at=_aware(job.started_at),
        ended_at=_aware(job.ended_at),
        duration=duration,
        tracks=meta.get("tracks"),
        error=_failure(job, meta),
    )


@dataclass(frozen=True)
class ImportState:
    """One import as `favdesk sync --wait` follows it; `job` is None once the job is gone."""

    sync: SyncStatus
    progress: Progress | None
    job: JobInfo | None

    @property
    def run_progress(self) -> Progress | None:
        """The progress written by the job's current run; None before it starts.

        The hash outlives its run (the user's job id is always the same), so a progress
        older than the run's start is the previous run's last line.
        """
        progress, job = self.progress, self.job
        if progress is None or job is None or job.started_at is None:
            return None
        if progress.updated_at is None or progress.updated_at < job.started_at.replace(
            microsecond=0
        ):
            return None
        return progress


@redis_call
def import_state(conn: redis.Redis, user_id: str, job_id: str) -> ImportState:
    """GET + 2 x HGETALL in one round trip: cheap enough to read once a second while waiting."""
    pipe = conn.pipeline(transaction=False)
    pipe.get(sync_key(user_id))
    pipe.hgetall(progress_key(user_id))
    pipe.hgetall(job_key(job_id))
    sync_raw, progress_raw, job_raw = pipe.execute()
    job = _job_info(conn, job_id, job_raw)
    return ImportState(SyncStatus.parse(sync_raw), Progress.parse(progress_raw), job)


def _failure(job: Job, meta: Mapping[str, Any]) -> str | None:
    """Why a failed job failed (a re-queued job keeps its last error in meta: not shown)."""
    if job.get_status(refresh=False) is not JobStatus.FAILED:
        return None
    return meta.get("error") or "failed (no reason recorded)"


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _recency(info: JobInfo) -> datetime:
    return info.ended_at or info.started_at or info.enqueued_at or datetime.min.replace(tzinfo=UTC)
