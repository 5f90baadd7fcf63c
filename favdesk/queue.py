"""The `spotify-ingest` queue: one import job per user, its steering, and dashboard reads.

Every read for a dashboard is one pipelined round trip, and nothing here polls: hosted Redis
bills each command.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from favdesk import retries
from favdesk.errors import QueueError
from favdesk.keys import QUEUE_NAME, job_key
from favdesk.redisconn import redis_call

# Replies arrive as bytes: `connect()` never decodes them (RQ needs bytes). redis-py's types say
# `bytes | str` because they cannot know that, hence the `cast`s where replies are read.

#: The job function, enqueued by its path so that this module never imports the job.
IMPORT_FUNC = "favdesk.ingest.run_import"
JOB_ID_PREFIX = "ingest-"
#: TimerDeathPenalty cannot interrupt blocking I/O, so every HTTP call has its own timeout too.
JOB_TIMEOUT = 3600
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
ACTIVE_STATES = frozenset(
    {
        JobStatus.CREATED,
        JobStatus.QUEUED,
        JobStatus.STARTED,
        JobStatus.DEFERRED,
        JobStatus.SCHEDULED,
    }
)
ID_SAFE = frozenset(string.ascii_letters + string.digits + "-")


# --- job ids -----------------------------------------------------------------------------------


def import_job_id(user_id: str) -> str:
    """The one job id a user's import has: RQ allows only [A-Za-z0-9_-], so others are escaped."""
    encoded = "".join(
        ch if ch in ID_SAFE else "".join(f"_{b:02x}" for b in ch.encode()) for ch in user_id
    )
    return JOB_ID_PREFIX + encoded


def user_id_from_job_id(job_id: str) -> str | None:
    """The inverse of `import_job_id`; None for ids that are not import jobs."""
    if not job_id.startswith(JOB_ID_PREFIX):
        return None
    encoded = job_id.removeprefix(JOB_ID_PREFIX)
    out = bytearray()
    i = 0
    while i < len(encoded):
        if encoded[i] == "_":
            out.append(int(encoded[i + 1 : i + 3], 16))
            i += 3
        else:
            out.extend(encoded[i].encode())
            i += 1
    return out.decode("utf-8", "replace")


def job_user_id(job: Job) -> str | None:
    """The user a job imports for, from its meta (no extra Redis command)."""
    user_id = job.meta.get("user_id") if isinstance(job.meta, dict) else None
    return str(user_id) if user_id else user_id_from_job_id(job.id)


# --- enqueue -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnqueueResult:
    job_id: str
    created: bool


def ingest_queue(conn: redis.Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=conn)


@redis_call
def enqueue_import(
    conn: redis.Redis, user_id: str, *, func: str | Callable[..., Any] = IMPORT_FUNC
) -> EnqueueResult:
    """Queue an import for a user, unless one is queued or running: then answer with that one.

    Race-safe: RQ's `unique=True` checks and enqueues atomically, and a finished or failed
    previous job is deleted under WATCH so that a concurrent caller cannot delete a new one.
    """
    job_id = import_job_id(user_id)
    queue = ingest_queue(conn)
    for _ in range(5):
        try:
            queue.enqueue(  # type: ignore[type-var]  # rq's TypeVar refuses a str | callable union
                func,
                user_id,
                job_id=job_id,
                unique=True,
                job_timeout=JOB_TIMEOUT,
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
                meta={"user_id": user_id},
                description=f"import Liked Songs of {user_id}",
            )
            return EnqueueResult(job_id, created=True)
        except DuplicateJobError:
            pass
        if _job_status(conn, job_id) in ACTIVE_STATES:
            return EnqueueResult(job_id, created=False)
        _delete_if_ended(conn, job_id)
    raise QueueError(f"Could not queue an import for {user_id}: the queue kept changing, try again")


def _job_status(conn: redis.Redis, job_id: str) -> JobStatus | None:
    raw = cast(bytes | None, conn.hget(job_key(job_id), "status"))
    return JobStatus(raw.decode()) if raw else None


def _delete_if_ended(conn: redis.Redis, job_id: str) -> None:
    """Delete a finished/failed/stopped job, but not one that became active meanwhile."""
    key = job_key(job_id)
    with conn.pipeline() as pipe:
        try:
            pipe.watch(key)
            raw = cast(bytes | None, pipe.hget(key, "status"))
            if raw is None or JobStatus(raw.decode()) in ACTIVE_STATES:
                return
            job = Job.fetch(job_id, connection=conn)
            pipe.multi()
            job.delete(pipeline=pipe)
            pipe.execute()
        except (redis.WatchError, NoSuchJobError, InvalidJobOperation):
            return  # changed or deleted meanwhile: the caller looks again


@redis_call
def enqueue_due_retries(
    conn: redis.Redis, *, func: str | Callable[..., Any] = IMPORT_FUNC, now: float | None = None
) -> list[EnqueueResult]:
    """Enqueue the imports whose retry time has come; each is claimed by one caller only."""
    results = []
    for user_id in retries.due_retries(conn, now):
        if retries.claim(conn, user_id):
            results.append(enqueue_import(conn, user_id, func=func))
    return results


# --- steering jobs -----------------------------------------------------------------------------


@redis_call
def retry_job(conn: redis.Redis, job_id: str) -> None:
    """Put a failed job back at the end of the queue (the worker still needs a kick)."""
    try:
        FailedJobRegistry(queue=ingest_queue(conn)).requeue(job_id)
    except NoSuchJobError:
        raise QueueError(f"Job {job_id} no longer exists") from None
    except InvalidJobOperation:
        raise QueueError(f"Job {job_id} has not failed, so there is nothing to retry") from None


@redis_call
def delete_job(conn: redis.Redis, job_id: str) -> None:
    """Delete a job that is not running (queued, finished or failed)."""
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return
    if job.get_status(refresh=False) is JobStatus.STARTED:
        raise QueueError(f"Job {job_id} is running: stop the worker (cancel) first")
    user_id = job_user_id(job)
    job.delete()
    if user_id is not None:  # a deleted import must not come back through its retry
        retries.cancel_retry(conn, user_id)
