"""favdesk's RQ worker: in a thread of the app, or in the foreground for servers.

Hosted Redis bills every command, so the worker sends none unless it has work: by default it
runs `work(burst=True)` when kicked and its thread ends when the queue is empty. Pause and
stop end the thread too; nothing is ever suspended through Redis (`rq suspend` polls every
second). Only when asked to wait for other apps' jobs does it block on the queue (about 1.3
commands a minute). State and progress reach the GUI through listener callbacks, not Redis.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

import redis
from rq.command import parse_payload
from rq.exceptions import InvalidJobOperation, NoSuchJobError, StopRequested
from rq.job import Job, JobStatus, get_current_job
from rq.registry import FailedJobRegistry
from rq.timeouts import JobTimeoutException, TimerDeathPenalty
from rq.worker import SimpleWorker

from favdesk.errors import FavdeskError, RedisUnavailable
from favdesk.queue import (
    IMPORT_FUNC,
    QUEUE_NAME,
    enqueue_due_retries,
    ingest_queue,
    job_user_id,
    next_retry_at,
    recover_abandoned_jobs,
)
from favdesk.redisconn import translated, unavailable

logger = logging.getLogger("favdesk.worker")
WAKE_FUNC = "favdesk.worker.wake_up"
#: Heartbeats while a job runs: a worker that dies mid-job is noticed within about 2 minutes.
HEARTBEAT_INTERVAL = 60
#: A blocking worker's TTL: its pop waits ~30 min, so waiting idle costs ~0.5 commands a minute
#: (RQ's default 420 s costs 1.3). A worker that died is noticed by its missing process first.
WAITING_WORKER_TTL = 1800
RQ_LOG_LEVEL = "WARNING"
#: How often a stop re-checks that its wake-up job reached this worker and not another one.
WAKE_RECHECK = 2.0
#: Backoff of a blocking worker whose Redis failed: 5 s doubling up to 5 minutes.
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 300.0


def wake_up() -> None:
    """The no-op job a stop puts at the front of the queue to wake a blocked worker."""


class WorkerState(StrEnum):
    STOPPED = "stopped"
    IDLE = "idle"  # running, nothing to do, sending nothing
    BUSY = "busy"  # running a job
    WAITING = "waiting"  # blocking wait for jobs from other apps
    PAUSED = "paused"
    STOPPING = "stopping"


class WorkerListener:
    """Callbacks from the worker; they run on the worker thread and must not block.

    A change made by a call (pause, stop, ...) while no job runs is reported on the
    calling thread. Subclass and override what you need; the defaults do nothing.
    """

    def on_state(self, state: WorkerState) -> None:
        pass

    def on_job_started(self, job_id: str, user_id: str | None) -> None:
        pass

    def on_job_progress(
        self, job_id: str, user_id: str | None, fetched: int, total: int, phase: str
    ) -> None:
        pass

    def on_job_finished(
        self, job_id: str, user_id: str | None, ok: bool, error: str | None
    ) -> None:
        pass

    def on_log(self, line: str) -> None:
        pass


# --- what a job sees ---------------------------------------------------------------------------


@dataclass
class JobContext:
    """What favdesk's worker gives the job it runs: cancel flag, progress and log sinks."""

    job_id: str | None
    user_id: str | None
    cancel: threading.Event
    runtime: object | None = None
    on_report: Callable[[int, int, str], None] | None = field(default=None, repr=False)
    on_log: Callable[[str], None] | None = field(default=None, repr=False)

    def report(self, fetched: int, total: int, phase: str) -> None:
        """Progress for the local listener (free: no Redis command)."""
        if self.on_report is None:
            logger.debug("%s: %s %d/%d", self.job_id, phase, fetched, total)
            return
        self.on_report(fetched, total, phase)

    def log(self, line: str) -> None:
        """A worker log line (`[spotify-ingest] ...`) for the dashboard."""
        if self.on_log is None:
            logger.info("%s", line)
            return
        self.on_log(line)


_current_context: ContextVar[JobContext | None] = ContextVar("favdesk_job_context", default=None)


def current_job_context() -> JobContext:
    """The running job's context; under another worker (a stock `rq worker`) a default one

    whose report/log only log and whose cancel never fires.
    """
    context = _current_context.get()
    if context is not None:
        return context
    job = get_current_job()
    return JobContext(
        job_id=job.id if job else None,
        user_id=job_user_id(job) if job else None,
        cancel=threading.Event(),
    )


def describe_failure(error: BaseException, job: Job) -> str:
    """A failure in words for the jobs table; unexpected errors by type only (no URLs, tokens)."""
    if isinstance(error, FavdeskError):
        return str(error)
    if isinstance(error, JobTimeoutException):
        return f"took longer than its time limit ({job.timeout} s)"
    return f"unexpected {type(error).__name__}: see the worker log"


# --- the worker --------------------------------------------------------------------------------


@dataclass
class _Run:
    """The job being executed right now."""

    job_id: str
    user_id: str | None
    cancel: threading.Event = field(default_factory=threading.Event)
    fetched: int | None = None
    error: str | None = None


class EmbeddedWorker(SimpleWorker):
    """A SimpleWorker that runs in any thread and is stopped by flags, never by signals.

    Overrides: no signal handlers (`signal.signal()` raises off the main thread); the
    `TimerDeathPenalty` (SIGALRM is main-thread only); a `shutdown` command sets the stop flag
    instead of SIGINT-ing the whole process; heartbeats on a side thread while a job runs so
    a worker that died is noticed in minutes, not after the job timeout.
    """

    death_penalty_class = TimerDeathPenalty
    log_result_lifespan = False

    def __init__(
        self,
        queues: Sequence[str] = (QUEUE_NAME,),
        *,
        connection: redis.Redis,
        listener: WorkerListener | None = None,
        runtime: object | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("job_monitoring_interval", HEARTBEAT_INTERVAL)
        super().__init__(list(queues), connection=connection, **kwargs)
        self.listener = listener or WorkerListener()
        self.runtime = runtime
        self._gate = threading.Lock()
        self._dequeue_pending = False
        self._blocking = False
        self._run: _Run | None = None
        self._heartbeats: _Heartbeats | None = None
        #: Set by an RQ `shutdown` command: the controller then stops instead of restarting.
        self.shutdown_commanded = False

    @property
    def wake_job_id(self) -> str:
        return f"favdesk-wake-{self.name}"

    @property
    def is_blocking(self) -> bool:
        """True while blocked waiting for a job (only a queued job can wake it)."""
        return self._blocking

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def _install_signal_handlers(self) -> None:
        """No-op: favdesk stops its workers with flags (see `request_stop_soon`)."""

    def handle_payload(self, message: dict[str, Any]) -> None:
        """`rq shutdown`-style commands set the flag; RQ's handler would SIGINT the process."""
        if parse_payload(message).get("command") != "shutdown":
            super().handle_payload(message)
            return
        self.shutdown_commanded = True
        if self.request_stop_soon():
            enqueue_wake_up(self.connection, self)

    def subscribe(self) -> None:
        """Listen for RQ commands (`rq shutdown`, ...) on favdesk's own listener thread.

        RQ's uses redis-py's `PubSubWorkerThread`, whose `stop()` waits out a 60 s read since
        redis-py 8.2: every burst and every quit would hang that long.
        """
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        listener = _CommandListener(self.pubsub, self.name)
        listener.start()
        self.pubsub_thread = listener  # type: ignore[assignment]  # RQ types it as None

    def unsubscribe(self) -> None:
        if self.pubsub_thread is None or self.pubsub is None:
            return
        self.pubsub_thread.stop()
        self.pubsub.close()
        self.pubsub_thread = None

    def request_stop_soon(self) -> bool:
        """Stop after the current job; True when blocked, so the caller must wake it up."""
        with self._gate:
            self._stop_requested = True
            return self._blocking

    def allow_work(self) -> None:
        with self._gate:
            self._stop_requested = False

    def cancel_current(self) -> bool:
        """Ask the running job to stop between pages; False when no job runs."""
        with self._gate:
            run = self._run
        if run is None:
            return False
        run.cancel.set()
        return True

    # RQ hooks, in the order a work loop calls them

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """favdesk's own errors are expected outcomes with a plain message: one line, no
        traceback (the job's record keeps it); anything else gets RQ's full report."""
        if isinstance(exc_info[1], FavdeskError):
            self.log.warning("job %s failed: %s", job.id, exc_info[1])
            return
        super().handle_exception(job, *exc_info)

    def run_maintenance_tasks(self) -> None:
        self.recover_abandoned()
        super().run_maintenance_tasks()

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Any] | None:
        with self._gate:
            if self._stop_requested:
                return None
            self._dequeue_pending = True
            self._blocking = timeout is not None
        self._notify("on_state", WorkerState.WAITING if timeout is not None else WorkerState.IDLE)
        try:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        finally:
            with self._gate:
                self._dequeue_pending = self._blocking = False

    def reorder_queues(self, reference_queue: Any) -> None:
        """Called right after a job was dequeued: from here on a stop waits for that job."""
        self._dequeue_pending = False
        super().reorder_queues(reference_queue)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """Also the top of RQ's dequeue retry loop: leave it there when a stop was requested."""
        if pipeline is None and self._stop_requested and self._dequeue_pending:
            raise StopRequested
        super().heartbeat(timeout, pipeline)

    def execute_job(self, job: Job, queue: Any) -> None:
        """Run one job with a JobContext, reporting started and finished to the listener."""
        if job.func_name == WAKE_FUNC:
            super().execute_job(job, queue)
            return
        run = _Run(job.id, job_user_id(job))
        context = JobContext(
            job.id,
            run.user_id,
            run.cancel,
            self.runtime,
            on_report=lambda fetched, total, phase: self._report(run, fetched, total, phase),
            on_log=lambda line: self._notify("on_log", line),
        )
        with self._gate:
            self._run = run
        self._notify("on_state", WorkerState.BUSY)
        self._notify("on_job_started", run.job_id, run.user_id)
        token = _current_context.set(context)
        try:
            super().execute_job(job, queue)
        except BaseException:
            lost = "the worker lost track of this job (Redis error): see the worker log"
            self._notify("on_job_finished", run.job_id, run.user_id, False, lost)
            raise
        finally:
            _current_context.reset(token)
            self._stop_heartbeats()
            with self._gate:
                self._run = None
        self._finish(job, queue, run)

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        super().prepare_job_execution(job, remove_from_intermediate_queue)
        if job.func_name != WAKE_FUNC:
            self._heartbeats = _Heartbeats(self, job)

    def get_heartbeat_ttl(self, job: Job) -> int:
        """Short, because `_Heartbeats` renews it (SimpleWorker would use the job timeout)."""
        return self.job_monitoring_interval + 60

    def handle_execution_ended(self, job: Job, queue: Any, heartbeat_ttl: int) -> None:
        """Right after the job function returned or raised: record tracks and the error."""
        self._stop_heartbeats()
        super().handle_execution_ended(job, queue, heartbeat_ttl)
        run = self._run
        if run is None:
            return
        error = sys.exc_info()[1]  # set when RQ calls this from its `except:` block
        run.error = describe_failure(error, job) if error is not None else None
        job.meta.update(tracks=run.fetched, error=run.error)
        job.save_meta()

    # helpers

    def _finish(self, job: Job, queue: Any, run: _Run) -> None:
        ok = job.get_status(refresh=False) == JobStatus.FINISHED
        error = None if ok else run.error or "failed"
        if not ok and run.cancel.is_set() and self._requeue(job, queue):
            error = "cancelled: re-queued, it resumes where it stopped"
        self._notify("on_job_finished", run.job_id, run.user_id, ok, error)

    def _requeue(self, job: Job, queue: Any) -> bool:
        """Put a job cancelled by a stop back at the front, so the next run resumes it."""
        try:
            FailedJobRegistry(queue=queue).requeue(job, at_front=True)
        except (InvalidJobOperation, NoSuchJobError):
            return False
        self._notify("on_log", f"[{QUEUE_NAME}] REQUEUED {job.id} (cancelled by a stop)")
        return True

    def recover_abandoned(self) -> None:
        """Re-queue jobs whose worker died (see `queue.recover_abandoned_jobs`)."""
        for job_id in recover_abandoned_jobs(self.connection):
            self._notify("on_log", f"[{QUEUE_NAME}] RECOVERED {job_id} (its worker died)")

    def _report(self, run: _Run, fetched: int, total: int, phase: str) -> None:
        run.fetched = fetched
        self._notify("on_job_progress", run.job_id, run.user_id, fetched, total, phase)

    def _stop_heartbeats(self) -> None:
        heartbeats, self._heartbeats = self._heartbeats, None
        if heartbeats is not None:
            heartbeats.stop()

    def _notify(self, name: str, *args: Any) -> None:
        """Call a listener method; a failing listener must not break the worker."""
        try:
            getattr(self.listener, name)(*args)
        except Exception:
            logger.exception("worker listener %s failed", name)


class _CommandListener(threading.Thread):
    """Dispatches the worker's pub/sub commands until `stop()`, which returns within a second.

    Reading a subscribed connection sends Redis nothing, so the long read costs no command.
    A stop sets the flag, then UNSUBSCRIBE's reply ends the read at once; the join is bounded.
    """

    READ_TIMEOUT = 60.0
    RECONNECT_DELAY = 2.0
    JOIN_TIMEOUT = 1.0

    def __init__(self, pubsub: redis.client.PubSub, worker_name: str) -> None:
        super().__init__(name=f"favdesk-commands-{worker_name}", daemon=True)
        self.pubsub = pubsub
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.pubsub.get_message(ignore_subscribe_messages=True, timeout=self.READ_TIMEOUT)
            except redis.ConnectionError:
                self._stopping.wait(self.RECONNECT_DELAY)  # redis-py resubscribes on the next read
            except (redis.RedisError, ValueError, OSError) as error:
                if not self._stopping.is_set():
                    logger.warning("command listener ended: %s", type(error).__name__)
                return

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(redis.RedisError, OSError):  # Redis gone: close() ends the read
            self.pubsub.unsubscribe()
        self.join(self.JOIN_TIMEOUT)


class _Heartbeats:
    """Renews the worker's and the job's heartbeats while a job runs (SimpleWorker doesn't)."""

    def __init__(self, worker: EmbeddedWorker, job: Job) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(worker, job), name="favdesk-heartbeat", daemon=True
        )
        self._thread.start()

    def _run(self, worker: EmbeddedWorker, job: Job) -> None:
        while not self._stop.wait(worker.job_monitoring_interval):
            try:
                worker.maintain_heartbeats(job)
            except redis.RedisError as error:
                logger.warning("heartbeat for %s failed: %s", job.id, type(error).__name__)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def enqueue_wake_up(conn: redis.Redis, worker: EmbeddedWorker) -> None:
    """Put the no-op at the front: the blocked worker pops it, runs it, then sees its flag."""
    ingest_queue(conn).enqueue(
        WAKE_FUNC,
        job_id=worker.wake_job_id,
        at_front=True,
        result_ttl=0,
        failure_ttl=60,
        ttl=300,
        description="wake up a favdesk worker so that it stops",
    )


# --- the controller ----------------------------------------------------------------------------


class WorkerController:
    """Runs one EmbeddedWorker on one daemon thread; every method may be called from any thread.

    Calls never wait on the network (except `stop(timeout=...)` and `join`, which wait for
    the thread). Default mode: each `kick()` runs a burst and the thread ends when the queue
    is empty, so an idle app sends Redis nothing. With `wait_for_other_jobs` the worker blocks
    on the queue instead (`WAITING_WORKER_TTL`: about 0.5 commands a minute).
    """

    def __init__(
        self,
        connection_factory: Callable[[], redis.Redis],
        *,
        runtime: object | None = None,
        wait_for_other_jobs: bool = False,
        listener: WorkerListener | None = None,
        import_func: str | Callable[..., Any] = IMPORT_FUNC,
        keep_trying: bool = True,
    ) -> None:
        self._factory = connection_factory
        #: Retry with backoff while Redis is down (the app); False ends the run (`--burst`).
        self.keep_trying = keep_trying
        self.runtime = runtime
        self.wait_for_other_jobs = wait_for_other_jobs
        self.listener = listener or WorkerListener()
        self.import_func = import_func
        self.last_error: str | None = None
        self.jobs_done = 0
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._worker: EmbeddedWorker | None = None
        self._control: redis.Redis | None = None
        self._running = False
        self._paused = False
        self._kicked = False
        self._activity = WorkerState.IDLE
        self._state = WorkerState.STOPPED
        self._retry_timer: threading.Timer | None = None
        self._backoff_interrupt = threading.Event()

    # public steering

    @property
    def state(self) -> WorkerState:
        return self._state

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def worker_name(self) -> str | None:
        return self._worker.name if self._worker else None

    def start(self) -> None:
        """Start (a first burst handles leftovers and jobs of workers that died)."""
        with self._lock:
            self._running = True
            self._kick_locked()
            self._update()

    def kick(self) -> None:
        """There is new work: run a burst now (no-op while paused or stopped)."""
        with self._lock:
            self._kick_locked()
            self._update()

    def pause(self) -> None:
        """Finish the current job, take no new ones, send nothing until `resume()`."""
        with self._lock:
            self._paused = True
            self._halt_locked(cancel_current=False)
            self._update()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._kick_locked()
            self._update()

    def stop(self, cancel_current: bool = False, timeout: float | None = None) -> bool:
        """Stop after the current job, or cancel it between pages (it is then re-queued).

        Returns at once unless `timeout` is given; then waits up to `timeout` seconds for the
        thread to end. Returns whether it has ended.
        """
        with self._lock:
            self._running = False
            self._halt_locked(cancel_current)
            thread = self._thread
            self._update()
        if thread is None:
            return True
        if timeout is not None:
            thread.join(timeout)
        return not thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread to end (a burst to finish, or a stop); True if it has."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # state

    def _kick_locked(self) -> None:
        if not self._running or self._paused:
            return
        self._kicked = True
        self._backoff_interrupt.set()
        if self._thread is None:
            self._activity = WorkerState.IDLE
            self._thread = threading.Thread(target=self._main, name="favdesk-worker", daemon=True)
            self._thread.start()

    def _halt_locked(self, cancel_current: bool) -> None:
        self._cancel_retry_timer()
        self._backoff_interrupt.set()
        worker, thread = self._worker, self._thread
        if worker is None or thread is None:
            return
        if cancel_current:
            worker.cancel_current()
        if worker.request_stop_soon():
            threading.Thread(
                target=self._wake, args=(worker, thread), name="favdesk-wake", daemon=True
            ).start()

    def _update(self) -> None:
        with self._lock:
            state = self._derive_state()
            if state == self._state:
                return
            self._state = state
            try:
                self.listener.on_state(state)
            except Exception:
                logger.exception("worker listener on_state failed")

    def _derive_state(self) -> WorkerState:
        alive = self._thread is not None
        if not self._running:
            return WorkerState.STOPPING if alive else WorkerState.STOPPED
        if self._paused:
            busy = alive and self._activity is WorkerState.BUSY
            return WorkerState.BUSY if busy else WorkerState.PAUSED
        return self._activity if alive else WorkerState.IDLE

    def _on_activity(self, state: WorkerState) -> None:
        with self._lock:
            self._activity = state
            self._update()

    def _should_work(self) -> bool:
        if not self._running or self._paused:
            return False
        return self.wait_for_other_jobs or self._kicked

    # the worker thread

    def _main(self) -> None:
        try:
            self._loop()
        finally:
            with self._lock:
                if self._thread is threading.current_thread():
                    self._thread = None
                    self._activity = WorkerState.IDLE
                self._update()

    def _loop(self) -> None:
        """Bursts (or a blocking run) until there is nothing to do, retrying with backoff while
        Redis is down (a failed connect is not a billed command), so work queued meanwhile
        runs when Redis is back. The thread gives up its place under the same lock as the
        decision to end, so a `kick()` right after it starts a new thread instead of being lost.
        """
        backoff = BACKOFF_FIRST
        while True:
            worker = self._make_worker()
            with self._lock:
                if not self._should_work():
                    self._thread = None
                    return
                self._kicked = False
                self._backoff_interrupt.clear()
                if worker is not None:
                    worker.allow_work()
            if worker is not None and self._session(worker):
                backoff = BACKOFF_FIRST
                continue
            with self._lock:
                if not self.keep_trying:
                    self._thread = None
                    return
                self._kicked = True  # the burst is still owed
            self._backoff_interrupt.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _make_worker(self) -> EmbeddedWorker | None:
        if self._worker is not None:
            return self._worker
        try:
            conn = self._factory()
            with translated(conn):
                worker = EmbeddedWorker(
                    connection=conn,
                    listener=_Relay(self),
                    runtime=self.runtime,
                    worker_ttl=WAITING_WORKER_TTL if self.wait_for_other_jobs else None,
                )
        except (FavdeskError, redis.RedisError) as error:
            self._record_error(error)
            return None
        with self._lock:
            self._worker = worker
        return worker

    def _session(self, worker: EmbeddedWorker) -> bool:
        """One burst (or one blocking run); False when Redis failed under it."""
        conn = worker.connection
        try:
            with translated(conn):
                enqueue_due_retries(conn, func=self.import_func)
                worker.recover_abandoned()
                worker.work(burst=not self.wait_for_other_jobs, logging_level=RQ_LOG_LEVEL)
                self._arm_retry_timer(next_retry_at(conn))
        except (FavdeskError, redis.RedisError) as error:
            self._record_error(error)
            return False
        if worker.shutdown_commanded:
            self._on_shutdown_command(worker)
        elif self.wait_for_other_jobs and not worker.stop_requested:
            self._record_error(RedisUnavailable("the worker lost its Redis connection"))
            return False
        self.last_error = None
        return True

    def _on_shutdown_command(self, worker: EmbeddedWorker) -> None:
        worker.shutdown_commanded = False
        with self._lock:
            self._running = False
            self._cancel_retry_timer()
        self._log(f"[{QUEUE_NAME}] worker: stopped by an RQ shutdown command")

    def _record_error(self, error: Exception) -> None:
        self.last_error = str(error)
        logger.warning("worker: %s", error)
        self._log(f"[{QUEUE_NAME}] worker: {error}")

    def _log(self, line: str) -> None:
        try:
            self.listener.on_log(line)
        except Exception:
            logger.exception("worker listener on_log failed")

    def _after_job(self) -> None:
        """Between jobs of a blocking worker: a job may have asked for a retry."""
        self.jobs_done += 1
        worker = self._worker
        if self.wait_for_other_jobs and worker is not None:
            try:
                self._arm_retry_timer(next_retry_at(worker.connection))
            except redis.RedisError as error:
                self._record_error(unavailable(worker.connection, error))

    # delayed retries: a local timer, so waiting costs Redis nothing

    def _arm_retry_timer(self, at: float | None) -> None:
        with self._lock:
            self._cancel_retry_timer()
            if at is None or not self._running or self._paused:
                return
            self._retry_timer = threading.Timer(max(0.0, at - time.time()), self._retry_due)
            self._retry_timer.daemon = True
            self._retry_timer.start()

    def _cancel_retry_timer(self) -> None:
        timer, self._retry_timer = self._retry_timer, None
        if timer is not None:
            timer.cancel()

    def _retry_due(self) -> None:
        """A retry time has come: a burst enqueues it; a blocked worker is woken by the enqueue."""
        with self._lock:
            blocked = self.wait_for_other_jobs and self._thread is not None
            if not blocked:
                self._kick_locked()
                self._update()
                return
        try:
            enqueue_due_retries(self._control_conn(), func=self.import_func)
        except (FavdeskError, redis.RedisError) as error:
            self._record_error(error)

    # stopping a blocked worker

    def _control_conn(self) -> redis.Redis:
        with self._lock:
            if self._control is None:
                self._control = self._factory()
            return self._control

    def _wake(self, worker: EmbeddedWorker, thread: threading.Thread) -> None:
        """Wake the blocked worker with a no-op job; again if another worker took it."""
        conn = self._control_conn()
        key = f"rq:job:{worker.wake_job_id}"
        try:
            while thread.is_alive() and worker.stop_requested:
                if worker.is_blocking and not conn.exists(key):
                    enqueue_wake_up(conn, worker)
                thread.join(WAKE_RECHECK)
            if conn.exists(key):
                Job.fetch(worker.wake_job_id, connection=conn).delete()
        except (redis.RedisError, NoSuchJobError) as error:
            logger.warning("could not wake the worker: %s", type(error).__name__)


class _Relay(WorkerListener):
    """Between the worker and the controller's listener: folds activity into the state."""

    def __init__(self, controller: WorkerController) -> None:
        self.controller = controller

    def on_state(self, state: WorkerState) -> None:
        self.controller._on_activity(state)

    def on_job_started(self, job_id: str, user_id: str | None) -> None:
        self.controller.listener.on_job_started(job_id, user_id)

    def on_job_progress(
        self, job_id: str, user_id: str | None, fetched: int, total: int, phase: str
    ) -> None:
        self.controller.listener.on_job_progress(job_id, user_id, fetched, total, phase)

    def on_job_finished(
        self, job_id: str, user_id: str | None, ok: bool, error: str | None
    ) -> None:
        self.controller._after_job()
        self.controller.listener.on_job_finished(job_id, user_id, ok, error)

    def on_log(self, line: str) -> None:
        self.controller.listener.on_log(line)


# --- `favdesk worker` --------------------------------------------------------------------------


class _Printer(WorkerListener):
    """What `favdesk worker` prints: one line per job event and the jobs' own log lines."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def on_job_started(self, job_id: str, user_id: str | None) -> None:
        self._print(f"[{QUEUE_NAME}] started {job_id} (user {user_id})")

    def on_job_finished(
        self, job_id: str, user_id: str | None, ok: bool, error: str | None
    ) -> None:
        self._print(f"[{QUEUE_NAME}] finished {job_id}: {'ok' if ok else error}")

    def on_log(self, line: str) -> None:
        self._print(line)


class _SignalStop:
    """Ctrl-C/SIGTERM: finish the current job; again: cancel it (re-queued); a third: quit now.

    The handler only counts: a second signal can interrupt the first handler, so the steering
    happens in `act()`, called by the main loop between waits.
    """

    def __init__(self, controller: WorkerController, out: TextIO) -> None:
        self.controller = controller
        self.out = out
        self.received = 0
        self.acted = 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> _SignalStop:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()

    def handle(self, signum: int, frame: object) -> None:
        self.received += 1
        if self.received >= 3:
            self.__exit__()
            raise KeyboardInterrupt

    def act(self) -> None:
        while self.acted < self.received:
            self.acted += 1
            if self.acted == 1:
                print(
                    "stopping after the current job (again: cancel it)", file=self.out, flush=True
                )
                self.controller.stop()
            else:
                print("cancelling the current job; it will be re-queued", file=self.out, flush=True)
                self.controller.stop(cancel_current=True)


def run_standalone(
    connection_factory: Callable[[], redis.Redis],
    *,
    burst: bool,
    runtime: object | None = None,
    import_func: str | Callable[..., Any] = IMPORT_FUNC,
    out: TextIO | None = None,
) -> int:
    """`favdesk worker [--burst]`: the same worker in the foreground until done or signalled.

    The worker runs on the controller's thread while this (main) thread only waits for it and
    handles signals, so a stop never injects an exception into a job or a Redis call. Any
    number of these, on any machines, can share one Redis. Exit code 0, or 1 if Redis failed.
    """
    out = out or sys.stdout
    controller = WorkerController(
        connection_factory,
        runtime=runtime,
        wait_for_other_jobs=not burst,
        listener=_Printer(out),
        import_func=import_func,
        keep_trying=not burst,
    )
    mode = "one burst" if burst else "waiting for jobs; Ctrl-C to stop"
    with _SignalStop(controller, out) as signals:
        controller.start()
        print(f"[{QUEUE_NAME}] worker started ({mode})", file=out, flush=True)
        while not controller.join(timeout=0.2):
            signals.act()
        controller.stop()
    print(
        f"[{QUEUE_NAME}] worker stopped after {controller.jobs_done} job(s)", file=out, flush=True
    )
    return 1 if controller.last_error else 0
