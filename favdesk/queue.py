"""The `spotify-ingest` queue: one import job per user, its steering, and dashboard reads.

Every read for a dashboard is one pipelined round trip, and nothing here polls: hosted Redis
bills each command.
"""

from __future__ import annotations

import json
import socket
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import redis
from rq import Queue
from rq.command import send_command
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from favdesk import retries
from favdesk.errors import QueueError
from favdesk.keys import QUEUE_CONTROL_CHANNEL, QUEUE_NAME, QUEUE_PAUSED_KEY, job_key
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
#: The notices on `QUEUE_CONTROL_CHANNEL`.
PAUSE, PAUSE_AND_CANCEL, RESUME = "pause", "pause-cancel", "resume"
#: RQ's command to the worker running a job (favdesk's workers cancel it between pages).
STOP_JOB = "stop-job"


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


@redis_call
def cancel_job(conn: redis.Redis, job_id: str) -> str:
    """Ask the worker running a job to cancel it; the worker's name.

    A favdesk worker stops the import between pages (it fails as cancelled and keeps its
    pages, so the next sync resumes it); a stock RQ worker kills the job (RQ's stop-job). One
    HMGET and one PUBLISH.
    """
    raw_status, raw_worker = cast(
        list[bytes | None], conn.hmget(job_key(job_id), ["status", "worker_name"])
    )
    if raw_status is None:
        raise QueueError(f"Job {job_id} no longer exists")
    if JobStatus(raw_status.decode()) is not JobStatus.STARTED or not raw_worker:
        raise QueueError(f"Job {job_id} is not running, so there is nothing to cancel")
    worker = raw_worker.decode()
    send_command(conn, worker, STOP_JOB, job_id=job_id)
    return worker


# --- pausing the queue for every favdesk worker ------------------------------------------------


@dataclass(frozen=True)
class QueuePause:
    """The queue is paused for every favdesk worker: since when, and by whom."""

    since: datetime | None
    by: str

    def encode(self) -> str:
        since = self.since.isoformat() if self.since else None
        return json.dumps({"since": since, "by": self.by})

    @classmethod
    def parse(cls, raw: bytes | None) -> QueuePause | None:
        """The key's value; anything set there (another tool's `1`) still means paused."""
        if raw is None:
            return None
        try:
            value = json.loads(raw)
            return cls(datetime.fromisoformat(value["since"]), str(value["by"]))
        except (ValueError, TypeError, KeyError):
            return cls(None, "another program")


def pauser(program: str) -> str:
    """Who pauses, for the people reading it: `favdesk app on laptop`."""
    return f"{program} on {socket.gethostname()}"


@redis_call
def pause_queue(conn: redis.Redis, by: str, *, cancel_running: bool = False) -> QueuePause:
    """Pause the queue for every favdesk worker: each finishes the job it runs (or, with
    `cancel_running`, cancels it between pages and re-queues it) and takes none until
    `resume_queue`. A worker that was away reads the key when it reconnects. SET + PUBLISH in
    one round trip; stock RQ workers do not hear it."""
    pause = QueuePause(datetime.now(UTC), by)
    pipe = conn.pipeline(transaction=False)
    pipe.set(QUEUE_PAUSED_KEY, pause.encode())
    pipe.publish(QUEUE_CONTROL_CHANNEL, PAUSE_AND_CANCEL if cancel_running else PAUSE)
    pipe.execute()
    return pause


@redis_call
def resume_queue(conn: redis.Redis) -> bool:
    """Resume the queue: paused favdesk workers take jobs again at once. Whether it was paused."""
    pipe = conn.pipeline(transaction=False)
    pipe.delete(QUEUE_PAUSED_KEY)
    pipe.publish(QUEUE_CONTROL_CHANNEL, RESUME)
    deleted, _receivers = pipe.execute()
    return bool(deleted)


@redis_call
def queue_pause(conn: redis.Redis) -> QueuePause | None:
    """Whether the queue is paused (one GET)."""
    return QueuePause.parse(cast(bytes | None, conn.get(QUEUE_PAUSED_KEY)))
