"""Jobs whose worker died: re-queued at the front, or failed after too many deaths.

A worker that dies mid-job (killed, its machine asleep past its heartbeat) leaves its job in
the started registry; any favdesk worker that wakes puts it back so that it resumes.
"""

from __future__ import annotations

import socket
import time
from typing import cast

import redis
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry

from favdesk.keys import REGISTRY_KEYS, execution_key, worker_key
from favdesk.processes import process_alive
from favdesk.queue import FAILURE_TTL, ingest_queue, job_user_id
from favdesk.redisconn import redis_call
from favdesk.sync_status import SyncErrorReason, SyncState, SyncStatus, set_sync_status

#: A job that took its worker down this often is failed instead of re-queued again.
MAX_RECOVERIES = 2


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
        pipe.hget(execution_key(member), "worker_name")
    names = [n.decode() if n else None for n in pipe.execute()]
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.hmget(worker_key(name or "-"), "hostname", "pid", "death")
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
            died = SyncStatus(SyncState.ERROR, SyncErrorReason.WORKER_DIED)
            set_sync_status(conn, user_id, died)
        return None
    job.started_at = None
    ingest_queue(conn).enqueue_job(job, at_front=True)  # saves meta with the job
    return job_id
