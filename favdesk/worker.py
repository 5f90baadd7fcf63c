"""The worker controller: one favdesk RQ worker on a thread, steered from any thread.

Hosted Redis bills every command, so the worker sends none unless it has work: by default it
runs `work(burst=True)` when kicked and its thread ends when the queue is empty. Pause and
stop end the thread too; nothing is ever suspended through Redis (`rq suspend` polls every
second). Only when asked to wait for other apps' jobs does it block on the queue (about 0.5
commands a minute). A queue pause (for every favdesk worker, `queue.pause_queue`) is waited
out on the worker's command subscription, sending nothing. State and progress reach the GUI
through listener callbacks, not Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus

from favdesk import fleet
from favdesk.errors import FavdeskError, RedisUnavailable
from favdesk.keys import QUEUE_NAME, job_key
from favdesk.queue import IMPORT_FUNC, enqueue_due_retries
from favdesk.redisconn import translated
from favdesk.retries import next_retry_at
from favdesk.rq_worker import EmbeddedWorker, enqueue_wake_up
from favdesk.services import Services
from favdesk.worker_events import WorkerListener, WorkerState

logger = logging.getLogger("favdesk.worker")
#: A blocking worker's TTL: its pop waits ~30 min, so waiting idle costs ~0.5 commands a minute
#: (RQ's default 420 s costs 1.3). A worker that died is noticed by its missing process first.
WAITING_WORKER_TTL = 1800
RQ_LOG_LEVEL = "WARNING"
#: How often a stop re-checks that its wake-up job reached this worker and not another one.
WAKE_RECHECK = 2.0
#: Backoff of a blocking worker whose Redis failed: 5 s doubling up to 5 minutes.
BACKOFF_FIRST, BACKOFF_MAX = 5.0, 300.0


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
        services: Services | None = None,
        wait_for_other_jobs: bool = False,
        listener: WorkerListener | None = None,
        import_func: str | Callable[..., Any] = IMPORT_FUNC,
        keep_trying: bool = True,
        kind: str = fleet.APP,
    ) -> None:
        self._factory = connection_factory
        #: What the worker's name says it is (`fleet.APP` or `fleet.STANDALONE`).
        self.kind = kind
        #: Retry with backoff while Redis is down (the app); False ends the run (`--burst`).
        self.keep_trying = keep_trying
        self.services = services
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
        #: Redis failed under the worker: its registration must be marked dead before it
        #: registers again (see `EmbeddedWorker.forget_registration`).
        self._lost_redis = False
        self._redis_down_since: datetime | None = None

    # public steering

    @property
    def state(self) -> WorkerState:
        return self._state

    @property
    def redis_down_since(self) -> datetime | None:
        """When Redis first failed under the running worker; None while it answers."""
        return self._redis_down_since

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def worker_name(self) -> str | None:
        return self._worker.name if self._worker else None

    @property
    def queue_paused(self) -> bool:
        """The queue's pause as the worker last heard it (False before it first ran)."""
        return self._worker.queue_paused if self._worker else False

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
            self._start_waking(worker, thread, lambda: worker.stop_requested)

    def _start_waking(
        self, worker: EmbeddedWorker, thread: threading.Thread, wanted: Callable[[], bool]
    ) -> None:
        threading.Thread(
            target=self._wake, args=(worker, thread, wanted), name="favdesk-wake", daemon=True
        ).start()

    def _on_queue_paused(self, paused: bool) -> None:
        """A blocked worker hears a pause on its subscription but sits in its pop: wake it."""
        with self._lock:
            worker, thread = self._worker, self._thread
        if paused and worker is not None and thread is not None and worker.is_blocking:
            self._start_waking(worker, thread, lambda: worker.queue_paused and worker.is_blocking)

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
        if alive and self._redis_down_since is not None:
            return WorkerState.WAITING_FOR_REDIS
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
                    services=self.services,
                    kind=self.kind,
                    wait_when_paused=self.keep_trying,
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
                if self._lost_redis:
                    worker.forget_registration()
                    self._lost_redis = False
                enqueue_due_retries(conn, func=self.import_func)
                worker.recover_abandoned()
                self._redis_answers()
                worker.work(burst=not self.wait_for_other_jobs, logging_level=RQ_LOG_LEVEL)
                self._arm_retry_timer(next_retry_at(conn))
        except (FavdeskError, redis.RedisError) as error:
            self._lost_redis = True
            self._record_error(error)
            return False
        if worker.shutdown_commanded:
            self._on_shutdown_command(worker)
        elif self.wait_for_other_jobs and not worker.stop_requested:
            self._lost_redis = True
            self._record_error(RedisUnavailable("the worker lost its Redis connection"))
            return False
        self._redis_answers()
        return True

    def _on_shutdown_command(self, worker: EmbeddedWorker) -> None:
        worker.shutdown_commanded = False
        with self._lock:
            self._running = False
            self._cancel_retry_timer()
        self._log(f"[{QUEUE_NAME}] worker: stopped by an RQ shutdown command")

    def _redis_answers(self) -> None:
        self.last_error = None
        with self._lock:
            if self._redis_down_since is not None:
                self._redis_down_since = None
                self._update()

    def _record_error(self, error: Exception) -> None:
        """Redis failed under the worker (it retries with backoff unless told not to)."""
        with self._lock:
            if self._redis_down_since is None:
                self._redis_down_since = datetime.now(UTC)
            self._update()
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
            except RedisUnavailable as error:  # the session that follows says so and retries
                logger.info("worker: %s", error)

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

    def _wake(
        self, worker: EmbeddedWorker, thread: threading.Thread, wanted: Callable[[], bool]
    ) -> None:
        """Wake the blocked worker with a no-op job while `wanted()`; again if another worker
        took it; then remove it if it still waits in the queue (the worker woke otherwise)."""
        conn = self._control_conn()
        key = job_key(worker.wake_job_id)
        try:
            while thread.is_alive() and wanted():
                if worker.is_blocking and not conn.exists(key):
                    enqueue_wake_up(conn, worker)
                thread.join(WAKE_RECHECK)
            if conn.hget(key, "status") == JobStatus.QUEUED.value.encode():
                Job.fetch(worker.wake_job_id, connection=conn).delete()
        except (redis.RedisError, NoSuchJobError, InvalidJobOperation) as error:
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

    def on_queue_paused(self, paused: bool) -> None:
        self.controller._on_queue_paused(paused)
        self.controller.listener.on_queue_paused(paused)
