"""Every RQ worker on this Redis, favdesk's and stock ones: who and where, what each runs; stop
one (RQ's shutdown command) and clean up the registrations of workers that are gone.

favdesk's workers are named `favdesk-<kind>-<hex>`, so a reader tells them from stock ones
with no extra command. A read is two pipelined round trips (three when a job runs); the
dashboard reads it only while its Workers tab is shown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import cast

import redis
from rq.command import send_shutdown_command

from favdesk.keys import (
    QUEUE_NAME,
    QUEUE_PAUSED_KEY,
    QUEUE_WORKERS_KEY,
    WORKERS_KEY,
    progress_key,
    worker_key,
)
from favdesk.queue import QueuePause, user_id_from_job_id
from favdesk.redisconn import redis_call
from favdesk.sync_status import Progress

PREFIX = "favdesk-"
#: The kinds of favdesk worker, as their names carry them.
APP, STANDALONE = "app", "worker"
KIND_WORDS = {APP: "favdesk app", STANDALONE: "favdesk worker"}
STOCK = "stock RQ"
#: The state RQ shows for a worker whose registration outlived its heartbeat.
EXPIRED = "expired"


def worker_name(kind: str) -> str:
    """A new favdesk worker's name: unique, so a crashed one never blocks a restart."""
    return f"{PREFIX}{kind}-{uuid.uuid4().hex}"


def kind_of(name: str) -> str:
    """`favdesk app`, `favdesk worker` or `stock RQ`, from the name alone."""
    if not name.startswith(PREFIX):
        return STOCK
    return KIND_WORDS.get(name.removeprefix(PREFIX).partition("-")[0], "favdesk")


def is_favdesk(name: str) -> bool:
    return name.startswith(PREFIX)


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as its registration in Redis says."""

    name: str
    kind: str
    host: str | None = None
    pid: int | None = None
    #: RQ's state: `idle`, `busy`, `suspended` (favdesk: waiting out a queue pause), ...;
    #: `expired` when the registration outlived the heartbeat (the process is gone).
    state: str = EXPIRED
    queues: tuple[str, ...] = ()
    job_id: str | None = None
    user_id: str | None = None
    progress: Progress | None = None
    last_heartbeat: datetime | None = None

    @property
    def favdesk(self) -> bool:
        return is_favdesk(self.name)

    @property
    def expired(self) -> bool:
        return self.state == EXPIRED

    @property
    def on_queue(self) -> bool:
        return QUEUE_NAME in self.queues


@dataclass(frozen=True)
class Fleet:
    """The workers on this Redis and the queue's pause, read at one moment."""

    workers: tuple[WorkerInfo, ...]
    pause: QueuePause | None
    taken_at: datetime

    @property
    def stock_on_queue(self) -> tuple[WorkerInfo, ...]:
        """Live stock RQ workers on favdesk's queue: a queue pause does not reach them."""
        return tuple(w for w in self.workers if not w.favdesk and w.on_queue and not w.expired)

    @property
    def expired(self) -> tuple[WorkerInfo, ...]:
        return tuple(w for w in self.workers if w.expired)


@redis_call
def read_fleet(conn: redis.Redis) -> Fleet:
    """SMEMBERS + GET, then HGETALL per worker, then HGETALL per running job's progress."""
    pipe = conn.pipeline(transaction=False)
    pipe.smembers(WORKERS_KEY)
    pipe.get(QUEUE_PAUSED_KEY)
    members, raw_pause = pipe.execute()
    keys = sorted(cast(bytes, key).decode() for key in members)
    pipe = conn.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    hashes = pipe.execute() if keys else []
    workers = [_worker(key, raw) for key, raw in zip(keys, hashes, strict=True)]
    workers = _with_progress(conn, workers)
    workers.sort(key=lambda w: (w.expired, not w.favdesk, w.host or "", w.name))
    return Fleet(tuple(workers), QueuePause.parse(raw_pause), datetime.now(UTC))


def _worker(key: str, raw: dict[bytes, bytes]) -> WorkerInfo:
    name = key.removeprefix(worker_key(""))
    if not raw:
        return WorkerInfo(name, kind_of(name))
    fields = {k.decode(): v.decode(errors="replace") for k, v in raw.items()}
    job_id = fields.get("current_job") or None
    pid = fields.get("pid", "")
    return WorkerInfo(
        name=name,
        kind=kind_of(name),
        host=fields.get("hostname") or None,
        pid=int(pid) if pid.isdigit() else None,
        state=EXPIRED if fields.get("death") else fields.get("state") or "unknown",
        queues=tuple(q for q in fields.get("queues", "").split(",") if q),
        job_id=job_id,
        user_id=user_id_from_job_id(job_id) if job_id else None,
        last_heartbeat=_moment(fields.get("last_heartbeat")),
    )


def _with_progress(conn: redis.Redis, workers: list[WorkerInfo]) -> list[WorkerInfo]:
    """The progress of each running import, in one more round trip (none when nothing runs)."""
    users = sorted({w.user_id for w in workers if w.user_id})
    if not users:
        return workers
    pipe = conn.pipeline(transaction=False)
    for user_id in users:
        pipe.hgetall(progress_key(user_id))
    progress = dict(zip(users, (Progress.parse(raw) for raw in pipe.execute()), strict=True))
    return [replace(w, progress=progress.get(w.user_id)) if w.user_id else w for w in workers]


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@redis_call
def stop_worker(conn: redis.Redis, name: str) -> None:
    """RQ's shutdown command (one PUBLISH): a favdesk worker stops after its current job, a
    stock RQ worker does a warm shutdown (it too finishes its job first)."""
    send_shutdown_command(conn, name)


@redis_call
def clean_expired(conn: redis.Redis, names: list[str]) -> int:
    """Remove the registrations of workers that are gone (their heartbeat expired) from RQ's
    worker sets; a live worker's is kept. The number removed. Their jobs are recovered by
    the next favdesk worker that runs (see `recovery.py`)."""
    if not names:
        return 0
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.exists(worker_key(name))
    gone = [worker_key(n) for n, alive in zip(names, pipe.execute(), strict=True) if not alive]
    if not gone:
        return 0
    pipe = conn.pipeline(transaction=False)
    pipe.srem(WORKERS_KEY, *gone)
    pipe.srem(QUEUE_WORKERS_KEY, *gone)
    removed, _ = pipe.execute()
    return int(removed)
