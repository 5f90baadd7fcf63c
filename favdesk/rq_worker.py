"""favdesk's RQ worker class: every RQ internal favdesk touches lives in this module.

A `SimpleWorker` that runs in any thread and is stopped by flags, never by signals. Each
non-public RQ hook it overrides or calls has a canary test of its signature and behaviour
(tests/test_rq_worker.py): pin rq, and run those first when upgrading it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from rq.command import parse_payload
from rq.exceptions import InvalidJobOperation, NoSuchJobError, StopRequested
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from rq.timeouts import JobTimeoutException, TimerDeathPenalty
from rq.worker import SimpleWorker, WorkerStatus

from favdesk import fleet
from favdesk.errors import FavdeskError
from favdesk.job_context import JobContext, running_with
from favdesk.keys import QUEUE_CONTROL_CHANNEL, QUEUE_NAME, QUEUE_PAUSED_KEY, REGISTRY_KEYS
from favdesk.progress import counts_bytes
from favdesk.queue import PAUSE, PAUSE_AND_CANCEL, RESUME, STOP_JOB, ingest_queue, job_user_id
from favdesk.recovery import recover_abandoned_jobs
from favdesk.services import Services
from favdesk.worker_events import WorkerListener, WorkerState

logger = logging.getLogger("favdesk.worker")
WAKE_FUNC = "favdesk.rq_worker.wake_up"
#: Heartbeats while a job runs: a worker that dies mid-job is noticed within about 2 minutes.
HEARTBEAT_INTERVAL = 60
#: How long past a missed heartbeat a running job still counts as alive (a busy machine).
HEARTBEAT_GRACE = 60
TAKEN_OVER = "another worker took this job over while this one was away: its run is dropped"
#: A worker waiting out a queue pause renews its registration this often (seconds) and sends
#: nothing else: about 0.07 commands a minute.
PAUSED_HEARTBEAT = 1800
CANCELLED_REMOTELY = "cancelled from a dashboard or `favdesk cancel`"


def wake_up() -> None:
    """The no-op job a stop puts at the front of the queue to wake a blocked worker."""


def describe_failure(error: BaseException, job: Job) -> str:
    """A failure in words for the jobs table; unexpected errors by type only (no URLs, tokens)."""
    if isinstance(error, FavdeskError):
        return str(error)
    if isinstance(error, JobTimeoutException):
        return f"took longer than its time limit ({job.timeout} s)"
    return f"unexpected {type(error).__name__}: see the worker log"


@dataclass
class _Run:
    """The job being executed right now."""

    job_id: str
    user_id: str | None
    cancel: threading.Event = field(default_factory=threading.Event)
    #: A cancelled job goes back to the queue (a stop or a queue pause), unless a person
    #: cancelled the job itself.
    requeue: bool = True
    fetched: int | None = None
    error: str | None = None
    #: Another worker took the job over while this one slept: its outcome is not recorded.
    taken_over: bool = False


class _QueuePaused(Exception):
    """Raised at the top of RQ's dequeue loop: the queue was paused while the worker waited."""


class EmbeddedWorker(SimpleWorker):
    """A SimpleWorker that runs in any thread and is stopped by flags, never by signals.

    Overrides: no signal handlers (`signal.signal()` raises off the main thread); the
    `TimerDeathPenalty` (SIGALRM is main-thread only); a `shutdown` command sets the stop flag
    instead of SIGINT-ing the whole process, and `stop-job` cancels the job between pages
    instead of killing a work horse; heartbeats on a side thread while a job runs so a worker
    that died is noticed in minutes, not after the job timeout. It honours favdesk's queue
    pause between jobs, waiting for the resume on its command subscription (no command).
    """

    death_penalty_class = TimerDeathPenalty
    log_result_lifespan = False

    def __init__(
        self,
        queues: Sequence[str] = (QUEUE_NAME,),
        *,
        connection: redis.Redis,
        listener: WorkerListener | None = None,
        services: Services | None = None,
        kind: str = fleet.APP,
        wait_when_paused: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("job_monitoring_interval", HEARTBEAT_INTERVAL)
        kwargs.setdefault("name", fleet.worker_name(kind))
        super().__init__(list(queues), connection=connection, **kwargs)
        self.listener = listener or WorkerListener()
        self.services = services
        #: While the queue is paused: wait for the resume (False: end the burst instead).
        self.wait_when_paused = wait_when_paused
        self._gate = threading.Lock()
        #: Notified when the queue's pause or the stop flag changes.
        self._changed = threading.Condition(self._gate)
        self._queue_paused = False
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

    @property
    def queue_paused(self) -> bool:
        """The queue is paused for every favdesk worker, as this one last heard."""
        return self._queue_paused

    def _install_signal_handlers(self) -> None:
        """No-op: favdesk stops its workers with flags (see `request_stop_soon`)."""

    def handle_payload(self, message: dict[str, Any]) -> None:
        """`rq shutdown`-style commands set the flag; RQ's handler would SIGINT the process.
        `stop-job` cancels the job between pages (RQ's would kill a work horse)."""
        payload = parse_payload(message)
        command = payload.get("command")
        if command == STOP_JOB:
            self.cancel_job(str(payload.get("job_id")))
            return
        if command != "shutdown":
            super().handle_payload(message)
            return
        self.shutdown_commanded = True
        if self.request_stop_soon():
            enqueue_wake_up(self.connection, self)

    def subscribe(self) -> None:
        """Listen for RQ commands (`rq shutdown`, ...) and favdesk's queue pause on favdesk's
        own listener thread, then read the pause (a notice from now on is heard).

        RQ's uses redis-py's `PubSubWorkerThread`, whose `stop()` waits out a 60 s read since
        redis-py 8.2: every burst and every quit would hang that long.
        """
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(
            **{
                self.pubsub_channel_name: self.handle_payload,
                QUEUE_CONTROL_CHANNEL: self._on_queue_notice,
            }
        )
        listener = _CommandListener(self.pubsub, self.name, on_resubscribed=self._reread_pause)
        listener.start()
        self.pubsub_thread = listener  # type: ignore[assignment]  # RQ types it as None
        self.read_queue_pause()

    def read_queue_pause(self) -> None:
        """Whether the queue is paused, from its key (one EXISTS)."""
        self._set_queue_paused(bool(self.connection.exists(QUEUE_PAUSED_KEY)))

    def _reread_pause(self) -> None:
        """Back from a lost connection: a pause or resume may have been missed meanwhile."""
        try:
            self.read_queue_pause()
        except redis.RedisError as error:
            logger.warning("could not read the queue's pause: %s", type(error).__name__)

    def _on_queue_notice(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        notice = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        if notice in (PAUSE, PAUSE_AND_CANCEL):
            self._set_queue_paused(True)
            if notice == PAUSE_AND_CANCEL:
                self.cancel_current()
        elif notice == RESUME:
            self._set_queue_paused(False)

    def _set_queue_paused(self, paused: bool) -> None:
        with self._gate:
            changed = paused != self._queue_paused
            self._queue_paused = paused
            self._changed.notify_all()
        if changed:
            self._notify("on_queue_paused", paused)

    def unsubscribe(self) -> None:
        if self.pubsub_thread is None or self.pubsub is None:
            return
        self.pubsub_thread.stop()
        self.pubsub.close()
        self.pubsub_thread = None

    def teardown(self) -> None:
        """RQ's teardown stops at a `register_death` that fails (Redis gone) and would leave
        the command listener running: it is stopped whatever happens."""
        try:
            super().teardown()
        finally:
            self.unsubscribe()

    def forget_registration(self) -> None:
        """After Redis went away under this worker: mark its old registration dead.

        A Redis that restarts from its append-only file brings the registration back without
        a death, and RQ's `register_birth` then refuses to start ("There exists an active
        worker named ..."). Marked dead, the job it was running counts as abandoned, and the
        next `recover_abandoned` puts it back in the queue to resume.
        """
        self.register_death()

    def request_stop_soon(self) -> bool:
        """Stop after the current job; True when blocked, so the caller must wake it up."""
        with self._gate:
            self._stop_requested = True
            self._changed.notify_all()
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

    def cancel_job(self, job_id: str) -> bool:
        """A person cancelled this job (RQ's `stop-job`): it stops between pages and ends as
        cancelled, not re-queued; False when this worker does not run it."""
        with self._gate:
            run = self._run
        if run is None or run.job_id != job_id:
            self._notify("on_log", f"[{QUEUE_NAME}] not running {job_id}: cancel ignored")
            return False
        run.requeue = False
        run.cancel.set()
        self._notify("on_log", f"[{QUEUE_NAME}] {job_id}: {CANCELLED_REMOTELY}")
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
        """Take the next job, but none while the queue is paused: wait out the pause first."""
        while self._wait_out_queue_pause():
            with self._gate:
                if self._stop_requested:
                    return None
                if self._queue_paused:
                    continue
                self._dequeue_pending = True
                self._blocking = timeout is not None
            state = WorkerState.WAITING if timeout is not None else WorkerState.IDLE
            self._notify("on_state", state)
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except _QueuePaused:
                continue
            finally:
                with self._gate:
                    self._dequeue_pending = self._blocking = False
        return None

    def _wait_out_queue_pause(self) -> bool:
        """While the queue is paused, wait for the resume notice (Redis hears nothing but a
        heartbeat every `PAUSED_HEARTBEAT` s); False when the worker should stop instead."""
        with self._gate:
            if self._stop_requested:
                return False
            if not self._queue_paused:
                return True
            wait = self.wait_when_paused
        if not wait:
            self._log_pause("the queue is paused: the burst ends")
            return False
        self._renew_while_paused(state=True)
        self._notify("on_state", WorkerState.QUEUE_PAUSED)
        self._log_pause("the queue is paused: waiting for it to resume")
        while True:
            with self._gate:
                if self._stop_requested or not self._queue_paused:
                    stopped = self._stop_requested
                    break
                woken = self._changed.wait(PAUSED_HEARTBEAT)
            if not woken:
                self._renew_while_paused()
        if not stopped:
            self._log_pause("the queue resumed")
        return not stopped

    def _renew_while_paused(self, state: bool = False) -> None:
        """Keep the registration alive through the pause; the Workers view shows `suspended`."""
        try:
            if state:
                self.set_state(WorkerStatus.SUSPENDED)
            self.heartbeat(PAUSED_HEARTBEAT + HEARTBEAT_GRACE)
        except redis.RedisError as error:  # best effort: the resume notice still arrives
            logger.info("heartbeat while paused failed: %s", type(error).__name__)

    def _log_pause(self, words: str) -> None:
        self._notify("on_log", f"[{QUEUE_NAME}] worker {self.name}: {words}")

    def reorder_queues(self, reference_queue: Any) -> None:
        """Called right after a job was dequeued: from here on a stop waits for that job."""
        self._dequeue_pending = False
        super().reorder_queues(reference_queue)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """Also the top of RQ's dequeue retry loop: leave it there when a stop was requested
        or the queue was paused."""
        if pipeline is None and self._dequeue_pending:
            if self._stop_requested:
                raise StopRequested
            if self._queue_paused:
                raise _QueuePaused
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
            self.services,
            on_report=lambda fetched, total, phase: self._report(run, fetched, total, phase),
            on_log=lambda line: self._notify("on_log", line),
            is_current=lambda: not self._taken_over(),
        )
        with self._gate:
            self._run = run
        self._notify("on_state", WorkerState.BUSY)
        self._notify("on_job_started", run.job_id, run.user_id)
        try:
            with running_with(context):
                super().execute_job(job, queue)
        except BaseException:
            lost = "the worker lost track of this job (Redis error): see the worker log"
            self._notify("on_job_finished", run.job_id, run.user_id, False, lost)
            raise
        finally:
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
        return self.job_monitoring_interval + HEARTBEAT_GRACE

    def handle_execution_ended(self, job: Job, queue: Any, heartbeat_ttl: int) -> None:
        """Right after the job function returned or raised: record tracks and the error."""
        self._stop_heartbeats()
        super().handle_execution_ended(job, queue, heartbeat_ttl)
        run = self._run
        if run is None:
            return
        error = sys.exc_info()[1]  # set when RQ calls this from its `except:` block
        run.error = describe_failure(error, job) if error is not None else None
        run.taken_over = self._taken_over()
        if run.taken_over:
            self._notify("on_log", f"[{QUEUE_NAME}] {job.id}: {TAKEN_OVER}")
            return
        job.meta.update(tracks=run.fetched, error=run.error)
        job.save_meta()

    def handle_job_success(self, job: Job, queue: Any, started_job_registry: Any) -> None:
        """RQ's bookkeeping, unless another worker took the job over (it records the end)."""
        if self._run is not None and self._run.taken_over:
            return
        super().handle_job_success(job, queue, started_job_registry)

    def handle_job_failure(
        self, job: Job, queue: Any, started_job_registry: Any = None, exc_string: str = ""
    ) -> None:
        if self._run is not None and self._run.taken_over:
            return
        super().handle_job_failure(job, queue, started_job_registry, exc_string)

    def _taken_over(self) -> bool:
        """Whether this worker's execution of the job left the started registry: a worker
        that found its heartbeat expired recovered the job (see `recovery.py`)."""
        execution = self.execution
        if execution is None:
            return False
        started = self.connection.zscore(REGISTRY_KEYS["started"], execution.composite_key)
        return started is None

    # helpers

    def _finish(self, job: Job, queue: Any, run: _Run) -> None:
        if run.taken_over:
            self._notify("on_job_finished", run.job_id, run.user_id, False, TAKEN_OVER)
            return
        ok = job.get_status(refresh=False) == JobStatus.FINISHED
        error = None if ok else run.error or "failed"
        if not ok and run.cancel.is_set() and run.requeue and self._requeue(job, queue):
            error = "cancelled: re-queued, it resumes where it stopped"
        self._notify("on_job_finished", run.job_id, run.user_id, ok, error)

    def _requeue(self, job: Job, queue: Any) -> bool:
        """Put a job cancelled by a stop or pause back at the front: the next run resumes it."""
        try:
            FailedJobRegistry(queue=queue).requeue(job, at_front=True)
        except (InvalidJobOperation, NoSuchJobError):
            return False
        self._notify("on_log", f"[{QUEUE_NAME}] REQUEUED {job.id} (cancelled by a stop or pause)")
        return True

    def recover_abandoned(self) -> None:
        """Re-queue jobs whose worker died (see `recovery.recover_abandoned_jobs`)."""
        for job_id in recover_abandoned_jobs(self.connection):
            self._notify("on_log", f"[{QUEUE_NAME}] RECOVERED {job_id} (its worker died)")

    def _report(self, run: _Run, fetched: int, total: int, phase: str) -> None:
        if not counts_bytes(phase):  # the upload's progress is in bytes, not tracks
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
    After a lost connection redis-py subscribes again; `on_resubscribed` then runs once.
    """

    READ_TIMEOUT = 60.0
    RECONNECT_DELAY = 2.0
    JOIN_TIMEOUT = 1.0

    def __init__(
        self,
        pubsub: redis.client.PubSub,
        worker_name: str,
        on_resubscribed: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name=f"favdesk-commands-{worker_name}", daemon=True)
        self.pubsub = pubsub
        self.on_resubscribed = on_resubscribed
        self._stopping = threading.Event()
        self._lost = False

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                message = self.pubsub.get_message(
                    ignore_subscribe_messages=False, timeout=self.READ_TIMEOUT
                )
            except redis.ConnectionError:
                self._lost = True
                self._stopping.wait(self.RECONNECT_DELAY)  # redis-py resubscribes on the next read
                continue
            except (redis.RedisError, ValueError, OSError) as error:
                if not self._stopping.is_set():
                    logger.warning("command listener ended: %s", type(error).__name__)
                return
            if self._lost and message is not None and message.get("type") == "subscribe":
                self._lost = False
                if self.on_resubscribed is not None:
                    self.on_resubscribed()

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
