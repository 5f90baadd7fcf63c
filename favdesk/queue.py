"""The `spotify-ingest` queue: one import job per user, sync status keys, retries, dashboard reads.

Every read for a dashboard is one pipelined round trip, and nothing here polls: hosted Redis
bills each command. Delayed retries (a long Spotify 429) live in a sorted set that favdesk's
worker reads when it wakes, instead of RQ's scheduler process (about 540 commands a minute).
"""

from __future__ import annotations

import socket
import string
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

import redis
from redis.typing import EncodableT, FieldT
from rq import Queue
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from favdesk.errors import QueueError
from favdesk.processes import process_alive
from favdesk.redisconn import redis_call

# Replies arrive as bytes: `connect()` never decodes them (RQ needs bytes). redis-py's types say
# `bytes | str` because they cannot know that, hence the `cast`s where replies are read.

QUEUE_NAME = "spotify-ingest"
#: The job function, enqueued by its path so that this module never imports the job.
IMPORT_FUNC = "favdesk.ingest.run_import"
JOB_ID_PREFIX = "ingest-"
#: TimerDeathPenalty cannot interrupt blocking I/O, so every HTTP call has its own timeout too.
JOB_TIMEOUT = 3600
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600
#: How long `done` / `error:*` stay readable; `syncing` outlives the job timeout only a little.
STATUS_TTL = 30 * 24 * 3600
SYNCING_TTL = JOB_TIMEOUT + 600
RETRY_KEY = "fav:retry"
#: A job that took its worker down this often is failed instead of re-queued again.
MAX_RECOVERIES = 2

QUEUE_KEY = f"rq:queue:{QUEUE_NAME}"
REGISTRY_KEYS = {
    "started": f"rq:wip:{QUEUE_NAME}",
    "finished": f"rq:finished:{QUEUE_NAME}",
    "failed": f"rq:failed:{QUEUE_NAME}",
    "deferred": f"rq:deferred:{QUEUE_NAME}",
    "scheduled": f"rq:scheduled:{QUEUE_NAME}",
}
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


# --- sync status: fav:sync:{userId} ------------------------------------------------------------


class SyncState(StrEnum):
    """The states of `fav:sync:{userId}`; the values are what the web app writes."""

    IDLE = "idle"  # no key
    SYNCING = "syncing"
    DONE = "done"
    ERROR = "error"


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
        resume_at = _parse_time(rest)
        if resume_at is None:
            return cls(SyncState.ERROR, reason=detail or None, raw=text)
        return cls(SyncState.ERROR, reason=reason, resume_at=resume_at, raw=text)

    @property
    def value(self) -> str | None:
        """The string to store (None for IDLE, which is "no key")."""
        if self.state is SyncState.IDLE:
            return None
        if self.state is not SyncState.ERROR:
            return self.state.value
        reason = self.reason or "failed"
        if self.resume_at is not None:
            return f"error:{reason}:{format_time(self.resume_at)}"
        return f"error:{reason}"


def format_time(moment: datetime) -> str:
    """UTC, second precision, `Z` suffix: the form used in status values."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def sync_key(user_id: str) -> str:
    return f"fav:sync:{user_id}"


def progress_key(user_id: str) -> str:
    return f"fav:progress:{user_id}"


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
        pipe.zrem(RETRY_KEY, user_id)
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


# --- progress: fav:progress:{userId} -----------------------------------------------------------


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
            updated_at=_parse_time(text.get("updated_at", "")),
            done_at=_parse_time(text.get("done_at", "")),
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
    raw = cast(bytes | None, conn.hget(f"rq:job:{job_id}", "status"))
    return JobStatus(raw.decode()) if raw else None


def _delete_if_ended(conn: redis.Redis, job_id: str) -> None:
    """Delete a finished/failed/stopped job, but not one that became active meanwhile."""
    key = f"rq:job:{job_id}"
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


# --- delayed retries without RQ's scheduler ----------------------------------------------------


@redis_call
def schedule_retry(conn: redis.Redis, user_id: str, resume_at: datetime) -> None:
    """Ask for a user's import to run again at `resume_at` (e.g. after a long 429)."""
    conn.zadd(RETRY_KEY, {user_id: resume_at.timestamp()})


@redis_call
def cancel_retry(conn: redis.Redis, user_id: str) -> None:
    conn.zrem(RETRY_KEY, user_id)


@redis_call
def due_retries(conn: redis.Redis, now: float | None = None) -> list[str]:
    """Users whose retry time has come."""
    moment = time.time() if now is None else now
    members = cast(list[bytes], conn.zrangebyscore(RETRY_KEY, "-inf", moment))
    return [m.decode() for m in members]


@redis_call
def next_retry_at(conn: redis.Redis) -> float | None:
    """Epoch seconds of the earliest pending retry, so a worker can set a local timer for it."""
    first = conn.zrange(RETRY_KEY, 0, 0, withscores=True)
    return float(first[0][1]) if first else None


@redis_call
def enqueue_due_retries(
    conn: redis.Redis, *, func: str | Callable[..., Any] = IMPORT_FUNC, now: float | None = None
) -> list[EnqueueResult]:
    """Enqueue the imports whose retry time has come; each is claimed by one caller only."""
    results = []
    for user_id in due_retries(conn, now):
        if conn.zrem(RETRY_KEY, user_id):
            results.append(enqueue_import(conn, user_id, func=func))
    return results


# --- dashboard reads ---------------------------------------------------------------------------


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


@redis_call
def queue_snapshot(conn: redis.Redis, user_ids: Iterable[str] = ()) -> QueueSnapshot:
    """One `pipeline(transaction=False)`: LLEN, 5 x ZCARD, then GET + HGETALL per user."""
    users = list(dict.fromkeys(user_ids))
    pipe = conn.pipeline(transaction=False)
    pipe.llen(QUEUE_KEY)
    for key in REGISTRY_KEYS.values():
        pipe.zcard(key)
    for user_id in users:
        pipe.get(sync_key(user_id))
        pipe.hgetall(progress_key(user_id))
    replies = pipe.execute()
    counts = dict(zip(["queued", *REGISTRY_KEYS], replies[:6], strict=True))
    per_user = replies[6:]
    statuses = {
        user_id: UserStatus(
            user_id, SyncStatus.parse(per_user[2 * i]), Progress.parse(per_user[2 * i + 1])
        )
        for i, user_id in enumerate(users)
    }
    return QueueSnapshot(**counts, users=statuses)


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
        pipe.hgetall(f"rq:job:{job_id}")
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


@redis_call
def import_state(conn: redis.Redis, user_id: str, job_id: str) -> ImportState:
    """GET + 2 x HGETALL in one round trip: cheap enough to read once a second while waiting."""
    pipe = conn.pipeline(transaction=False)
    pipe.get(sync_key(user_id))
    pipe.hgetall(progress_key(user_id))
    pipe.hgetall(f"rq:job:{job_id}")
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
        cancel_retry(conn, user_id)


# --- jobs whose worker died --------------------------------------------------------------------


@redis_call
def recover_abandoned_jobs(conn: redis.Redis) -> list[str]:
    """Re-queue (at the front) started jobs whose worker is gone; returns their ids.

    A worker is gone when its started-registry entry expired, its key expired or says it
    died, or it ran on this machine and its process no longer exists. Costs one ZRANGE
    when nothing is started. Each entry is claimed with ZREM, so concurrent callers never
    re-queue a job twice.
    """
    entries = cast(
        list[tuple[bytes, float]], conn.zrange(REGISTRY_KEYS["started"], 0, -1, withscores=True)
    )
    if not entries:
        return []
    dead = _dead_entries(conn, [(m.decode(), score) for m, score in entries])
    return [job_id for entry in dead if (job_id := _requeue_abandoned(conn, entry))]


def _dead_entries(conn: redis.Redis, entries: list[tuple[str, float]]) -> list[str]:
    pipe = conn.pipeline(transaction=False)
    for member, _ in entries:
        pipe.hget(f"rq:execution:{member}", "worker_name")
    names = [n.decode() if n else None for n in pipe.execute()]
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.hmget(f"rq:worker:{name or '-'}", "hostname", "pid", "death")
    workers = pipe.execute()
    now = time.time()
    return [
        member
        for (member, score), name, fields in zip(entries, names, workers, strict=True)
        if score < now or (name is not None and _worker_gone(fields))
    ]


def _worker_gone(fields: list[bytes | None]) -> bool:
    hostname, pid, death = fields
    if hostname is None or death is not None:
        return True
    if hostname.decode() != socket.gethostname() or pid is None:
        return False
    return not process_alive(int(pid))


def _requeue_abandoned(conn: redis.Redis, member: str) -> str | None:
    if not conn.zrem(REGISTRY_KEYS["started"], member):
        return None  # another process claimed it
    job_id = member.partition(":")[0]
    try:
        job = Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return None
    with conn.pipeline() as pipe:
        if ":" in member:
            Execution.from_composite_key(member, conn).delete(job, pipe)
        pipe.execute()
    job.meta["recoveries"] = int(job.meta.get("recoveries", 0)) + 1
    if job.meta["recoveries"] > MAX_RECOVERIES:
        job.meta["error"] = "its worker died repeatedly while running it"
        job.save_meta()
        job.set_status(JobStatus.FAILED)
        FailedJobRegistry(queue=ingest_queue(conn)).add(
            job, ttl=job.failure_ttl or FAILURE_TTL, exc_string=job.meta["error"]
        )
        user_id = job_user_id(job)
        if user_id is not None:  # else the status would say `syncing` until it expires
            set_sync_status(conn, user_id, "error:workerdied")
        return None
    job.started_at = None
    ingest_queue(conn).enqueue_job(job, at_front=True)  # saves meta with the job
    return job_id
