"""Core values for GUI tests, built the way the core builds them (real classes, plain data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq.job import JobStatus

from favdesk.accounts import Account
from favdesk.queue_status import JobInfo
from favdesk.runtime import RedisHealth, StatusSnapshot
from favdesk.storage import StoredFile
from favdesk.sync_status import Progress, SyncState, SyncStatus

NOW = datetime(2026, 11, 29, 14, 5, tzinfo=UTC)


def account(user_id="demo-listener", name="Demo Listener", needs_relink=False) -> Account:
    return Account(
        spotify_id=user_id,
        user_id=user_id,
        display_name=name,
        scopes="user-library-read",
        token_expires_at=NOW.timestamp() + 3600,
        authorized_at=NOW.timestamp() - 86400,
        linked_at=NOW.timestamp() - 86400,
        needs_relink=needs_relink,
    )


def health(reachable=True, error=None) -> RedisHealth:
    return RedisHealth(
        reachable=reachable,
        where="unix:///tmp/favdesk/redis.sock db 0",
        latency_ms=0.4 if reachable else None,
        version="7.0.15" if reachable else None,
        error=error,
    )


def job(
    job_id="ingest-demo-listener",
    state=JobStatus.FINISHED,
    tracks=120,
    error=None,
    user="demo-listener",
) -> JobInfo:
    return JobInfo(
        id=job_id,
        user_id=user,
        state=state,
        enqueued_at=NOW - timedelta(minutes=3),
        started_at=NOW - timedelta(minutes=3),
        ended_at=NOW - timedelta(minutes=2),
        duration=4.2,
        tracks=tracks,
        error=error,
    )


def snapshot(
    sync="done",
    reason=None,
    resume_at=None,
    progress=None,
    jobs=None,
    counts=None,
    reachable=True,
    error=None,
    user="demo-listener",
    taken_at=NOW,
) -> StatusSnapshot:
    return StatusSnapshot(
        redis=health(reachable, error),
        counts=counts
        if counts is not None
        else {"queued": 0, "started": 0, "finished": 1, "failed": 0, "deferred": 0, "scheduled": 0},
        syncs={user: SyncStatus(SyncState(sync), reason=reason, resume_at=resume_at)},
        progress={user: progress} if progress else {},
        jobs=jobs if jobs is not None else [job()],
        taken_at=taken_at,
    )


def progress(fetched=50, total=120, phase="fetching", done_at=None) -> Progress:
    return Progress(
        fetched=fetched,
        total=total,
        phase=phase,
        job_id="ingest-demo-listener",
        updated_at=NOW,
        done_at=done_at,
    )


def stored_file(day="2026-11-29", size=48213, user="demo-listener") -> StoredFile:
    return StoredFile(
        key=f"spotify/{user}/{day}.json", name=f"{day}.json", size=size, updated_at=NOW
    )
