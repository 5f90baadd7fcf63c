"""The ingest queue: one job per user, status keys, retries, dashboard reads and their cost."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from redis.connection import UnixDomainSocketConnection
from rq import Queue
from rq.job import Job, JobStatus

from favdesk import keys, queue, queue_status, recovery, redisconn, retries, sync_status
from favdesk.errors import FavdeskError, QueueError, RedisUnavailable
from favdesk.rq_worker import EmbeddedWorker
from favdesk.sync_status import SyncErrorReason, SyncState, SyncStatus
from tests import jobs
from tests.jobs import CommandMeter, Plan


@pytest.fixture
def conn(redis_url):
    return redisconn.connect(redis_url)


def run_burst(url: str) -> None:
    """Run every queued job with a fresh embedded worker in this thread."""
    EmbeddedWorker(connection=redisconn.connect(url, for_worker=True)).work(burst=True)


@pytest.fixture
def held_job(redis_url, conn):
    """Start `paged` for user "held" in a worker thread and hold it at its first page."""
    jobs.PLANS["held"] = plan = Plan()
    queue.enqueue_import(conn, "held", func=jobs.paged)
    thread = threading.Thread(target=run_burst, args=(redis_url,), daemon=True)
    thread.start()
    assert plan.holding.wait(10)
    yield plan
    plan.gate.set()
    thread.join(10)


# --- ids and status values ---------------------------------------------------------------------


@pytest.mark.parametrize("user_id", ["demo-listener", "alice@example.com", "a:b/c d", "ünï_x", "_"])
def test_job_id_is_rq_safe_and_reversible(user_id):
    job_id = queue.import_job_id(user_id)
    assert set(job_id) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    assert queue.user_id_from_job_id(job_id) == user_id


@pytest.mark.parametrize(
    ("raw", "state", "reason", "resume_at"),
    [
        (None, SyncState.IDLE, None, None),
        (b"syncing", SyncState.SYNCING, None, None),
        (b"done", SyncState.DONE, None, None),
        (b"error:reauth", SyncState.ERROR, "reauth", None),
        (
            b"error:ratelimited:2026-11-29T10:00:00Z",
            SyncState.ERROR,
            "ratelimited",
            datetime(2026, 11, 29, 10, 0, tzinfo=UTC),
        ),
        (b"error:Token expired: link again", SyncState.ERROR, "Token expired: link again", None),
    ],
)
def test_sync_status_values_parse_and_round_trip(raw, state, reason, resume_at):
    status = SyncStatus.parse(raw)
    assert (status.state, status.reason, status.resume_at) == (state, reason, resume_at)
    assert status.value == (raw.decode() if raw else None)


def test_error_reasons_read_as_the_enum_and_other_text_as_none():
    assert SyncStatus.parse(b"error:reauth").reason_kind is SyncErrorReason.REAUTH
    limited = SyncStatus.parse(b"error:ratelimited:2026-11-29T10:00:00Z")
    assert limited.reason_kind is SyncErrorReason.RATE_LIMITED
    assert SyncStatus.parse(b"error:reauth:revoked").reason_kind is SyncErrorReason.REAUTH
    assert SyncStatus.parse(b"error:Token expired: link again").reason_kind is None
    assert SyncStatus.parse(b"done").reason_kind is None


def test_every_reason_an_error_carries_is_a_sync_error_reason():
    def family(cls: type[FavdeskError]) -> list[type[FavdeskError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in family(sub))]

    assert {cls.reason for cls in family(FavdeskError)} <= set(SyncErrorReason)


def test_status_written_read_and_expiring(conn):
    sync_status.set_sync_status(conn, "u1", SyncState.SYNCING)
    assert sync_status.get_sync_status(conn, "u1").state is SyncState.SYNCING
    assert 0 < conn.ttl(keys.sync_key("u1")) <= sync_status.SYNCING_TTL
    sync_status.set_sync_status(conn, "u1", "error:ratelimited:2026-11-29T10:00:00Z")
    assert conn.get(keys.sync_key("u1")) == b"error:ratelimited:2026-11-29T10:00:00Z"
    sync_status.set_sync_status(conn, "u1", "idle")
    assert conn.exists(keys.sync_key("u1")) == 0


def test_done_clears_a_pending_retry_and_records_when(conn):
    retries.schedule_retry(conn, "u1", datetime.now(UTC) + timedelta(hours=1))
    sync_status.set_sync_status(conn, "u1", "done")
    assert retries.next_retry_at(conn) is None
    progress = queue_status.queue_snapshot(conn, ["u1"]).users["u1"].progress
    assert progress is not None and progress.done_at is not None
    assert abs((datetime.now(UTC) - progress.done_at).total_seconds()) < 5


# --- one import per user -----------------------------------------------------------------------


def test_enqueue_sets_timeouts_ttls_and_user(conn):
    result = queue.enqueue_import(conn, "alice@example.com")
    assert result.created
    job = Job.fetch(result.job_id, connection=conn)
    assert job.func_name == queue.IMPORT_FUNC and job.args == ("alice@example.com",)
    assert job.timeout == queue.JOB_TIMEOUT
    assert job.failure_ttl == 7 * 24 * 3600 and job.result_ttl == 24 * 3600
    assert job.meta["user_id"] == "alice@example.com"


def test_same_job_while_queued(conn):
    first = queue.enqueue_import(conn, "u1", func=jobs.quick)
    again = queue.enqueue_import(conn, "u1", func=jobs.quick)
    assert again == queue.EnqueueResult(first.job_id, created=False)
    assert conn.llen(keys.QUEUE_KEY) == 1
    assert queue.enqueue_import(conn, "u2", func=jobs.quick).created


def test_same_job_while_started(conn, held_job):
    job_id = queue.import_job_id("held")
    assert Job.fetch(job_id, connection=conn).get_status() is JobStatus.STARTED
    assert queue.enqueue_import(conn, "held", func=jobs.paged) == queue.EnqueueResult(job_id, False)
    assert conn.llen(keys.QUEUE_KEY) == 0


@pytest.mark.parametrize("func", [jobs.quick, jobs.no_account])
def test_new_job_after_the_previous_one_ended(redis_url, conn, func):
    first = queue.enqueue_import(conn, "u1", func=func)
    run_burst(redis_url)
    ended = Job.fetch(first.job_id, connection=conn).get_status()
    assert ended in (JobStatus.FINISHED, JobStatus.FAILED)
    again = queue.enqueue_import(conn, "u1", func=jobs.quick)
    assert again == queue.EnqueueResult(first.job_id, created=True)
    assert Job.fetch(first.job_id, connection=conn).get_status() is JobStatus.QUEUED
    assert (
        queue_status.queue_snapshot(conn).failed == 0
        and queue_status.queue_snapshot(conn).finished == 0
    )


@pytest.mark.parametrize("previous", [None, jobs.quick])
def test_concurrent_enqueues_make_one_job(redis_url, previous):
    if previous:
        queue.enqueue_import(redisconn.connect(redis_url), "u1", func=previous)
        run_burst(redis_url)
    callers = 12
    barrier = threading.Barrier(callers)
    results: list[queue.EnqueueResult] = []

    def call() -> None:
        conn = redisconn.connect(redis_url)
        barrier.wait()
        results.append(queue.enqueue_import(conn, "u1", func=jobs.quick))

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == callers
    assert {r.job_id for r in results} == {queue.import_job_id("u1")}
    assert sum(r.created for r in results) == 1
    assert redisconn.connect(redis_url).llen(keys.QUEUE_KEY) == 1


# --- dashboard reads ---------------------------------------------------------------------------


class CountingConnection(UnixDomainSocketConnection):
    """A real unix-socket connection that counts the round trips it starts."""

    sends = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sends += 1
        super().send_packed_command(command, check_health)


def test_snapshot_is_one_round_trip_of_known_cost(private_redis):
    pool = redis.ConnectionPool(
        connection_class=CountingConnection, path=str(private_redis.socket_path)
    )
    conn = redis.Redis(connection_pool=pool)
    conn.ping()
    meter = CommandMeter(redisconn.connect(private_redis.url))
    CountingConnection.sends = 0
    queue_status.queue_snapshot(conn, ["u1", "u2"])
    assert CountingConnection.sends == 1
    # LLEN, 5 ZCARD, GET of the queue's pause, GET + HGETALL per user
    assert sum(meter.delta().values()) == 1 + 5 + 1 + 2 * 2


def test_snapshot_counts_every_state_and_user(redis_url, conn, held_job):
    queue.enqueue_import(conn, "q1", func=jobs.quick)
    queue.enqueue_import(conn, "q2", func=jobs.quick)
    rq_queue = Queue(keys.QUEUE_NAME, connection=conn)
    parent = rq_queue.enqueue(jobs.quick, "parent")
    rq_queue.enqueue(jobs.quick, "child", depends_on=parent)
    rq_queue.enqueue_in(timedelta(hours=1), jobs.quick, "later")
    sync_status.set_sync_status(conn, "q1", "error:reauth")
    sync_status.set_progress(conn, "held", queue.import_job_id("held"), 50, 120, "fetching")

    snap = queue_status.queue_snapshot(conn, ["held", "q1", "nobody"])

    assert (snap.queued, snap.started, snap.deferred, snap.scheduled) == (3, 1, 1, 1)
    assert snap.users["q1"].sync == SyncStatus(SyncState.ERROR, "reauth", raw="error:reauth")
    progress = snap.users["held"].progress
    assert (progress.fetched, progress.total, progress.phase) == (50, 120, "fetching")
    assert progress.job_id == queue.import_job_id("held")
    assert (
        snap.users["nobody"].sync.state is SyncState.IDLE and snap.users["nobody"].progress is None
    )


def test_recent_jobs_newest_first_with_tracks_errors_and_durations(redis_url, conn):
    queue.enqueue_import(conn, "ok-user", func=jobs.quick)
    run_burst(redis_url)
    queue.enqueue_import(conn, "unlinked", func=jobs.no_account)
    run_burst(redis_url)
    queue.enqueue_import(conn, "waiting", func=jobs.quick)

    rows = queue_status.recent_jobs(conn, limit=10)

    assert [r.user_id for r in rows] == ["waiting", "unlinked", "ok-user"]
    waiting, failed, done = rows
    assert waiting.state is JobStatus.QUEUED and waiting.started_at is None
    assert failed.state is JobStatus.FAILED
    assert failed.error == "No Spotify account is linked for user unlinked: link Spotify first"
    assert done.state is JobStatus.FINISHED and done.tracks == 1 and done.error is None
    assert done.duration is not None and 0 <= done.duration < 5
    assert queue_status.recent_jobs(conn, limit=1) == rows[:1]


def test_retry_requeues_a_failed_job_and_delete_removes_it(redis_url, conn):
    result = queue.enqueue_import(conn, "unlinked", func=jobs.no_account)
    with pytest.raises(QueueError, match="has not failed"):
        queue.retry_job(conn, result.job_id)
    run_burst(redis_url)
    queue.retry_job(conn, result.job_id)
    assert Job.fetch(result.job_id, connection=conn).get_status() is JobStatus.QUEUED
    assert queue_status.queue_snapshot(conn).queued == 1
    queue.delete_job(conn, result.job_id)
    assert queue_status.queue_snapshot(conn).queued == 0
    assert conn.exists(f"rq:job:{result.job_id}") == 0


def test_deleting_a_failed_import_cancels_its_pending_retry(redis_url, conn):
    result = queue.enqueue_import(conn, "unlinked", func=jobs.no_account)
    run_burst(redis_url)
    retries.schedule_retry(conn, "unlinked", datetime.now(UTC) + timedelta(hours=1))
    queue.delete_job(conn, result.job_id)
    assert retries.next_retry_at(conn) is None


def test_a_running_job_is_not_deleted(conn, held_job):
    with pytest.raises(QueueError, match="running"):
        queue.delete_job(conn, queue.import_job_id("held"))


# --- delayed retries without a scheduler -------------------------------------------------------


def test_due_retries_are_enqueued_once_at_their_time(conn):
    resume = datetime.now(UTC) + timedelta(minutes=5)
    retries.schedule_retry(conn, "u1", resume)
    assert retries.due_retries(conn) == []
    assert retries.next_retry_at(conn) == pytest.approx(resume.timestamp())
    later = resume.timestamp() + 1
    assert queue.enqueue_due_retries(conn, func=jobs.quick, now=later) == [
        queue.EnqueueResult(queue.import_job_id("u1"), True)
    ]
    assert queue.enqueue_due_retries(conn, func=jobs.quick, now=later) == []
    assert retries.next_retry_at(conn) is None
    assert conn.llen(keys.QUEUE_KEY) == 1


def test_concurrent_retry_claims_enqueue_once(redis_url):
    conn = redisconn.connect(redis_url)
    for user in ("u1", "u2", "u3"):
        retries.schedule_retry(conn, user, datetime.now(UTC) - timedelta(seconds=1))
    barrier = threading.Barrier(6)
    created: list[queue.EnqueueResult] = []

    def claim() -> None:
        mine = redisconn.connect(redis_url)
        barrier.wait()
        created.extend(queue.enqueue_due_retries(mine, func=jobs.quick))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(r.job_id for r in created) == [queue.import_job_id(u) for u in ("u1", "u2", "u3")]
    assert conn.llen(keys.QUEUE_KEY) == 3


# --- abandoned jobs ----------------------------------------------------------------------------


def test_nothing_to_recover_costs_one_command(private_redis):
    conn = redisconn.connect(private_redis.url)
    conn.ping()
    meter = CommandMeter(redisconn.connect(private_redis.url))
    assert recovery.recover_abandoned_jobs(conn) == []
    assert meter.delta() == {"zrange": 1}


def test_a_live_workers_job_is_left_alone(conn, held_job):
    assert recovery.recover_abandoned_jobs(conn) == []
    assert queue_status.queue_snapshot(conn).started == 1


def test_redis_down_is_reported_as_redis_unavailable(tmp_path):
    conn = redisconn.connect(f"unix://{tmp_path}/gone.sock?db=0")
    started = time.monotonic()
    with pytest.raises(RedisUnavailable, match="unreachable"):
        queue.enqueue_import(conn, "u1")
    with pytest.raises(RedisUnavailable):
        queue_status.queue_snapshot(conn, ["u1"])
    assert time.monotonic() - started < 3
