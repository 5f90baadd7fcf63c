"""The embedded worker: thread-safe RQ, steering from other threads, silence when idle, recovery."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rq import Queue, SimpleWorker
from rq.command import send_shutdown_command
from rq.job import Job, JobStatus

from favdesk import keys, queue, queue_status, recovery, redisconn, retries, sync_status
from favdesk.job_context import current_job_context
from favdesk.rq_worker import EmbeddedWorker
from favdesk.standalone import run_standalone
from favdesk.worker import WorkerController
from favdesk.worker_events import WorkerListener, WorkerState
from tests import jobs
from tests.jobs import CommandMeter, Plan

STANDALONE = (
    "import sys; from favdesk.redisconn import connect; "
    "from favdesk.standalone import run_standalone; "
    "sys.exit(run_standalone(lambda: connect({url!r}, for_worker=True), burst={burst}))"
)


class Recorder(WorkerListener):
    """Records every callback, and lets a test wait for one without sleeping."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.changed = threading.Condition()

    def _add(self, *event: object) -> None:
        with self.changed:
            self.events.append(event)
            self.changed.notify_all()

    def on_state(self, state):
        self._add("state", state)

    def on_job_started(self, job_id, user_id):
        self._add("started", job_id, user_id)

    def on_job_progress(self, job_id, user_id, fetched, total, phase):
        self._add("progress", job_id, fetched, total, phase)

    def on_job_finished(self, job_id, user_id, ok, error):
        self._add("finished", job_id, user_id, ok, error)

    def on_log(self, line):
        self._add("log", line)

    def on_queue_paused(self, paused):
        self._add("queue", paused)

    def wait_for(self, check: Callable[[list[tuple]], bool], timeout: float = 10) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: check(self.events), timeout), self.events

    def wait_state(self, state: WorkerState, timeout: float = 10) -> None:
        self.wait_for(lambda events: self.states(events)[-1:] == [state], timeout)

    def wait_finished(self, user_id: str, timeout: float = 10) -> tuple:
        self.wait_for(lambda events: self.finished(user_id, events), timeout)
        return self.finished(user_id)[-1]

    def states(self, events: list[tuple] | None = None) -> list[WorkerState]:
        return [e[1] for e in (self.events if events is None else events) if e[0] == "state"]

    def finished(self, user_id: str, events: list[tuple] | None = None) -> list[tuple]:
        events = self.events if events is None else events
        return [e for e in events if e[0] == "finished" and e[2] == user_id]


@pytest.fixture(autouse=True)
def release_jobs():
    """Let held test jobs go and forget what jobs recorded, so no test leaks into the next."""
    yield
    for plan in jobs.PLANS.values():
        plan.gate.set()
    jobs.PLANS.clear()
    jobs.STARTS.clear()
    jobs.SERVICES.clear()


@pytest.fixture
def make_controller(redis_url):
    made: list[WorkerController] = []

    def make(url: str | None = None, **options) -> tuple[WorkerController, Recorder]:
        target = url or redis_url
        recorder = Recorder()
        controller = WorkerController(
            lambda: redisconn.connect(target, for_worker=True), listener=recorder, **options
        )
        made.append(controller)
        return controller, recorder

    yield make
    for controller in made:
        controller.stop(cancel_current=True, timeout=10)


@pytest.fixture
def app(redis_url):
    return redisconn.connect(redis_url)


def hold(user_id: str, **plan) -> Plan:
    jobs.PLANS[user_id] = Plan(**plan)
    return jobs.PLANS[user_id]


def job_status(app, user_id: str) -> JobStatus:
    return Job.fetch(queue.import_job_id(user_id), connection=app).get_status()


def wait_until_blocked(app, workers: int = 1, timeout: float = 10) -> None:
    """Until workers sit in their blocking pop (their start-up commands are then all sent)."""
    deadline = time.monotonic() + timeout
    while (
        sum(c.get("cmd") == "blmove" and "b" in c.get("flags", "") for c in app.client_list())
        < workers
    ):
        assert time.monotonic() < deadline, "the worker never blocked on the queue"
        time.sleep(0.02)


def quiet_window(seconds: float) -> None:
    """A measuring window (not a wait for an event): commands are counted across it."""
    time.sleep(seconds)


# --- running jobs ------------------------------------------------------------------------------


def test_burst_in_a_thread_runs_a_job_and_reports_it(app, make_controller):
    controller, recorder = make_controller(services="the app's services")
    result = queue.enqueue_import(app, "u1", func=jobs.quick)
    controller.start()
    assert recorder.wait_finished("u1") == ("finished", result.job_id, "u1", True, None)
    assert controller.join(10)
    kinds = [e[0] for e in recorder.events if e[0] != "state"]
    assert kinds == ["started", "progress", "log", "finished"]
    assert ("progress", result.job_id, 1, 1, "done") in recorder.events
    assert ("log", "[spotify-ingest] tracks: 1 (u1)") in recorder.events
    assert recorder.states() == [WorkerState.IDLE, WorkerState.BUSY, WorkerState.IDLE]
    assert jobs.SERVICES["u1"] == "the app's services"
    assert Job.fetch(result.job_id, connection=app).meta["tracks"] == 1
    assert threading.current_thread() is threading.main_thread()  # no signal reached pytest


def test_failed_job_is_reported_with_its_reason(app, make_controller, caplog):
    controller, recorder = make_controller()
    queue.enqueue_import(app, "u1", func=jobs.no_account)
    controller.start()
    _, _, _, ok, error = recorder.wait_finished("u1")
    assert not ok and error.startswith("No Spotify account is linked")
    assert job_status(app, "u1") is JobStatus.FAILED
    assert controller.join(10) and controller.state is WorkerState.IDLE
    assert "Traceback" not in caplog.text  # an expected outcome gets one plain line
    assert "No Spotify account is linked" in caplog.text


def test_kick_runs_new_work_and_idle_kicks_cost_no_thread(app, make_controller):
    controller, recorder = make_controller()
    controller.start()
    assert controller.join(10)
    queue.enqueue_import(app, "u1", func=jobs.quick)
    controller.kick()
    recorder.wait_finished("u1")
    assert controller.join(10)


def test_a_failing_listener_does_not_break_the_worker(app, redis_url):
    class Broken(WorkerListener):
        def on_job_started(self, job_id, user_id):
            raise RuntimeError("listener bug")

    controller = WorkerController(
        lambda: redisconn.connect(redis_url, for_worker=True), listener=Broken()
    )
    queue.enqueue_import(app, "u1", func=jobs.quick)
    controller.start()
    assert controller.join(10)
    assert job_status(app, "u1") is JobStatus.FINISHED


def test_job_context_under_a_stock_rq_worker_is_a_quiet_default(app):
    assert current_job_context().job_id is None
    result = queue.enqueue_import(app, "u1", func=jobs.probe)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        SimpleWorker([keys.QUEUE_NAME], connection=app).work(burst=True)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    seen = Job.fetch(result.job_id, connection=app).return_value()
    assert seen == {"job_id": result.job_id, "user_id": "u1", "cancel": False, "services": None}


@pytest.mark.slow
def test_heartbeats_keep_a_running_jobs_registration_alive(app, redis_url):
    plan = hold("u1")
    queue.enqueue_import(app, "u1", func=jobs.paged)
    worker = EmbeddedWorker(
        connection=redisconn.connect(redis_url, for_worker=True), job_monitoring_interval=1
    )
    thread = threading.Thread(target=worker.work, kwargs={"burst": True}, daemon=True)
    thread.start()
    assert plan.holding.wait(10)
    (entry, first), *_ = app.zrange(keys.REGISTRY_KEYS["started"], 0, -1, withscores=True)
    deadline = time.monotonic() + 10
    while app.zscore(keys.REGISTRY_KEYS["started"], entry) == first:
        assert time.monotonic() < deadline, "no heartbeat renewed the started entry"
        time.sleep(0.05)
    assert 0 < app.ttl(worker.key) <= 61 + 1
    plan.gate.set()
    thread.join(10)
    assert job_status(app, "u1") is JobStatus.FINISHED


# --- steering from another thread --------------------------------------------------------------


def test_pause_finishes_the_current_job_then_takes_no_new_ones(app, make_controller):
    controller, recorder = make_controller()
    first = hold("first")
    queue.enqueue_import(app, "first", func=jobs.paged)
    controller.start()
    assert first.holding.wait(10)

    controller.pause()
    queue.enqueue_import(app, "second", func=jobs.quick)
    controller.kick()
    assert controller.state is WorkerState.BUSY and controller.paused
    first.gate.set()

    recorder.wait_state(WorkerState.PAUSED)
    assert recorder.wait_finished("first")[3] is True
    assert not recorder.finished("second")
    assert job_status(app, "second") is JobStatus.QUEUED
    controller.resume()
    assert recorder.wait_finished("second")[3] is True
    recorder.wait_state(WorkerState.IDLE)


def test_stop_lets_the_current_job_finish(app, make_controller):
    controller, recorder = make_controller()
    plan = hold("u1", hold_at=1)
    queue.enqueue_import(app, "u1", func=jobs.paged)
    controller.start()
    assert plan.holding.wait(10)
    assert controller.stop() is False  # returns at once; the job is still running
    assert controller.state is WorkerState.STOPPING
    plan.gate.set()
    assert controller.stop(timeout=10) is True
    assert recorder.states()[-1] is WorkerState.STOPPED
    assert recorder.wait_finished("u1")[3] is True
    assert [e[2] for e in recorder.events if e[0] == "progress"] == [1, 2, 3]


def test_stop_with_cancel_stops_between_pages_and_requeues(app, make_controller):
    controller, recorder = make_controller()
    plan = hold("u1", hold_at=1)
    result = queue.enqueue_import(app, "u1", func=jobs.paged)
    controller.start()
    assert plan.holding.wait(10)

    assert controller.stop(cancel_current=True, timeout=10)

    _, _, _, ok, error = recorder.wait_finished("u1")
    assert not ok and "re-queued" in error
    assert [e[2] for e in recorder.events if e[0] == "progress"] == [1]  # stopped between pages
    assert job_status(app, "u1") is JobStatus.QUEUED
    assert app.lindex(keys.QUEUE_KEY, 0) == result.job_id.encode()
    plan.gate.set()
    controller.start()
    recorder.wait_for(lambda ev: len(recorder.finished("u1", ev)) == 2)
    assert recorder.finished("u1")[-1][3] is True and plan.runs == 2


# --- Redis command budget ----------------------------------------------------------------------


@pytest.mark.slow
def test_no_redis_commands_while_idle_paused_or_stopped(private_redis, make_controller):
    url = private_redis.url
    app = redisconn.connect(url)
    meter = CommandMeter(redisconn.connect(url))
    controller, recorder = make_controller(url)
    queue.enqueue_import(app, "u1", func=jobs.quick)
    controller.start()
    recorder.wait_finished("u1")
    assert controller.join(10)

    meter.reset()
    quiet_window(1.0)
    assert meter.delta() == {}, "idle (burst mode)"

    controller.pause()
    queue.enqueue_import(app, "u2", func=jobs.quick)
    meter.reset()
    controller.kick()
    quiet_window(1.0)
    assert meter.delta() == {}, "paused, with work waiting"
    assert controller.state is WorkerState.PAUSED

    controller.resume()
    recorder.wait_finished("u2")
    controller.stop(timeout=10)
    meter.reset()
    controller.kick()
    quiet_window(1.0)
    assert meter.delta() == {}, "stopped"


@pytest.mark.slow
def test_blocking_wait_mode_is_nearly_silent_takes_other_apps_jobs_and_stops(
    private_redis, make_controller
):
    url = private_redis.url
    app = redisconn.connect(url)
    meter = CommandMeter(redisconn.connect(url))
    controller, recorder = make_controller(url, wait_for_other_jobs=True)
    controller.start()
    recorder.wait_state(WorkerState.WAITING)
    wait_until_blocked(app)

    meter.reset()
    quiet_window(3.0)
    assert meter.total() <= 2, meter.delta()

    queue.enqueue_import(app, "u1", func=jobs.quick)  # another app's job: no kick
    assert recorder.wait_finished("u1")[3] is True
    recorder.wait_state(WorkerState.WAITING)

    started = time.monotonic()
    assert controller.stop(timeout=10)
    assert time.monotonic() - started < 3
    assert recorder.states()[-1] is WorkerState.STOPPED
    deadline = time.monotonic() + 5  # the wake-up job is removed just after the thread ends
    while app.keys("rq:job:favdesk-wake-*") or app.llen(keys.QUEUE_KEY):
        assert time.monotonic() < deadline, "a wake-up job was left behind"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_blocking_workers_share_the_queue_and_stop_one_at_a_time(app, make_controller):
    first, first_events = make_controller(wait_for_other_jobs=True)
    second, second_events = make_controller(wait_for_other_jobs=True)
    first.start()
    wait_until_blocked(app, 1)
    second.start()
    wait_until_blocked(app, 2)

    assert second.stop(timeout=10)  # Redis hands the wake-up to the first worker; it is re-sent

    assert second_events.states()[-1] is WorkerState.STOPPED
    assert first.state is WorkerState.WAITING
    queue.enqueue_import(app, "u1", func=jobs.quick)
    assert first_events.wait_finished("u1")[3] is True


def test_rq_shutdown_command_stops_the_worker_not_the_process(app, make_controller):
    controller, recorder = make_controller(wait_for_other_jobs=True)
    controller.start()
    recorder.wait_state(WorkerState.WAITING)
    send_shutdown_command(app, controller.worker_name)
    recorder.wait_state(WorkerState.STOPPED)  # RQ's own handler would SIGINT pytest here


# --- delayed retries without a scheduler -------------------------------------------------------


@pytest.mark.slow
def test_rate_limited_job_is_retried_at_its_resume_time(private_redis, make_controller):
    url = private_redis.url
    app = redisconn.connect(url)
    controller, recorder = make_controller(url, import_func=jobs.limited_once)
    queue.enqueue_import(app, "u1", func=jobs.limited_once)
    controller.start()
    assert recorder.wait_finished("u1")[3] is False
    status = sync_status.get_sync_status(app, "u1")
    assert status.reason == "ratelimited" and status.resume_at is not None
    assert controller.join(10)
    meter = CommandMeter(redisconn.connect(url))
    quiet_window(0.5)
    assert meter.delta() == {}, "waiting for the resume time costs nothing"

    recorder.wait_for(lambda ev: len(recorder.finished("u1", ev)) == 2)

    assert recorder.finished("u1")[-1][3] is True
    first, second = jobs.STARTS["u1"]
    assert second - first >= jobs.RETRY_DELAY - 0.05
    assert not app.keys("rq:scheduler*")
    assert retries.next_retry_at(app) is None


@pytest.mark.slow
def test_paused_worker_runs_a_due_retry_only_after_resume(app, make_controller):
    controller, recorder = make_controller(import_func=jobs.limited_once)
    queue.enqueue_import(app, "u1", func=jobs.limited_once)
    controller.start()
    recorder.wait_finished("u1")
    controller.pause()
    resume_at = retries.next_retry_at(app)
    quiet_window(max(0.0, resume_at - time.time()) + 0.3)
    assert len(jobs.STARTS["u1"]) == 1 and retries.next_retry_at(app) == resume_at
    controller.resume()
    recorder.wait_for(lambda ev: len(recorder.finished("u1", ev)) == 2)


# --- dead workers ------------------------------------------------------------------------------


@pytest.fixture
def killed_worker_job(app, redis_url, tmp_path, monkeypatch):
    """A job left `started` by a standalone worker process that was SIGKILLed mid-job."""
    monkeypatch.setenv("FAVDESK_TEST_MARKERS", str(tmp_path))
    result = queue.enqueue_import(app, "u1", func="tests.jobs.hang_once")
    process = subprocess.Popen(
        [sys.executable, "-c", STANDALONE.format(url=redis_url, burst=True)],
        stdout=subprocess.DEVNULL,
    )
    wait_for_file(tmp_path / "u1.started", process)
    process.kill()
    process.wait(10)
    assert job_status(app, "u1") is JobStatus.STARTED
    return result.job_id


def wait_for_file(path: Path, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"worker exited with {process.returncode}"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


@pytest.mark.timeout(60)
def test_job_of_a_killed_worker_is_recovered_and_completed(app, killed_worker_job, make_controller):
    controller, recorder = make_controller()
    controller.start()
    assert recorder.wait_finished("u1")[3] is True
    assert Job.fetch(killed_worker_job, connection=app).return_value() == {"tracks": 7}
    assert f"[spotify-ingest] RECOVERED {killed_worker_job} (its worker died)" in [
        e[1] for e in recorder.events if e[0] == "log"
    ]
    assert queue_status.queue_snapshot(app).started == 0


@pytest.mark.timeout(60)
def test_remote_workers_job_is_recovered_once_its_heartbeat_expired(app, killed_worker_job):
    started = keys.REGISTRY_KEYS["started"]
    entry = app.zrange(started, 0, -1)[0]
    worker_name = app.hget(b"rq:execution:" + entry, "worker_name").decode()
    app.hset(f"rq:worker:{worker_name}", "hostname", "another-machine")
    assert recovery.recover_abandoned_jobs(app) == []  # its heartbeat is still fresh

    app.zadd(started, {entry: time.time() - 1})  # what two minutes without heartbeats do

    assert recovery.recover_abandoned_jobs(app) == [killed_worker_job]
    assert recovery.recover_abandoned_jobs(app) == []
    assert job_status(app, "u1") is JobStatus.QUEUED
    assert Job.fetch(killed_worker_job, connection=app).meta["recoveries"] == 1


def test_a_job_whose_workers_keep_dying_fails_with_its_status_said(app, killed_worker_job):
    job = Job.fetch(killed_worker_job, connection=app)
    job.meta["recoveries"] = recovery.MAX_RECOVERIES
    job.save_meta()
    started = keys.REGISTRY_KEYS["started"]
    entry = app.zrange(started, 0, -1)[0]
    app.zadd(started, {entry: time.time() - 1})

    assert recovery.recover_abandoned_jobs(app) == []
    assert job_status(app, "u1") is JobStatus.FAILED
    assert sync_status.get_sync_status(app, "u1").raw == "error:workerdied"


# --- `favdesk worker` --------------------------------------------------------------------------


def test_standalone_burst_runs_the_queue_and_exits(app, redis_url):
    for user in ("u1", "u2"):
        queue.enqueue_import(app, user, func=jobs.quick)
    out = io.StringIO()
    code = run_standalone(
        lambda: redisconn.connect(redis_url, for_worker=True), burst=True, out=out
    )
    assert code == 0
    assert (
        job_status(app, "u1") is JobStatus.FINISHED and job_status(app, "u2") is JobStatus.FINISHED
    )
    assert "worker stopped after 2 job(s)" in out.getvalue()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_standalone_without_redis_exits_non_zero(tmp_path):
    out = io.StringIO()
    url = f"unix://{tmp_path}/gone.sock?db=0"
    code = run_standalone(lambda: redisconn.connect(url, for_worker=True), burst=True, out=out)
    assert code == 1
    assert "unreachable" in out.getvalue()


def start_standalone(redis_url: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", STANDALONE.format(url=redis_url, burst=False)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert "worker started" in process.stdout.readline()
    return process


def read_until(process: subprocess.Popen, text: str) -> str:
    seen = ""
    while text not in seen:
        line = process.stdout.readline()
        assert line, f"worker exited before printing {text!r}: {seen}"
        seen += line
    return seen


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_standalone_worker_stops_on_sigterm_when_idle(redis_url):
    process = start_standalone(redis_url)
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert "worker stopped after 0 job(s)" in process.stdout.read()


def sigterm_during_a_job(app, redis_url, tmp_path, monkeypatch) -> subprocess.Popen:
    """A standalone worker busy with a job that waits for a marker file, sent one SIGTERM."""
    monkeypatch.setenv("FAVDESK_TEST_MARKERS", str(tmp_path))
    queue.enqueue_import(app, "u1", func="tests.jobs.until_released")
    process = start_standalone(redis_url)
    wait_for_file(tmp_path / "u1.started", process)
    process.send_signal(signal.SIGTERM)
    read_until(process, "stopping after the current job")
    return process


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_standalone_worker_finishes_the_current_job_on_sigterm(
    app, redis_url, tmp_path, monkeypatch
):
    process = sigterm_during_a_job(app, redis_url, tmp_path, monkeypatch)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.5)  # still busy with the job
    (tmp_path / "u1.release").touch()
    assert process.wait(15) == 0
    assert job_status(app, "u1") is JobStatus.FINISHED


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_standalone_worker_second_sigterm_cancels_and_requeues(
    app, redis_url, tmp_path, monkeypatch
):
    process = sigterm_during_a_job(app, redis_url, tmp_path, monkeypatch)
    process.send_signal(signal.SIGTERM)
    output = read_until(process, "REQUEUED")
    assert process.wait(15) == 0
    assert "cancelling the current job" in output
    assert job_status(app, "u1") is JobStatus.QUEUED
    assert Queue(keys.QUEUE_NAME, connection=app).job_ids == [queue.import_job_id("u1")]


def test_a_kick_while_the_burst_thread_is_ending_is_not_lost(app, redis_url):
    ending, release = threading.Event(), threading.Event()

    class SlowToEnd(WorkerController):
        def _loop(self):
            super()._loop()
            ending.set()
            release.wait(10)  # the thread has decided to end but has not ended yet

    recorder = Recorder()
    controller = SlowToEnd(lambda: redisconn.connect(redis_url, for_worker=True), listener=recorder)
    try:
        controller.start()  # an empty queue: the burst ends at once
        assert ending.wait(10)
        queue.enqueue_import(app, "u1", func=jobs.quick)
        controller.kick()
        _, _, _, ok, _ = recorder.wait_finished("u1")
        assert ok
    finally:
        release.set()
        controller.stop(timeout=10)


def test_a_burst_that_met_redis_down_runs_the_job_once_redis_is_back(
    tmp_path, monkeypatch, make_controller
):
    from favdesk.embedded_redis import EmbeddedRedis

    monkeypatch.setattr("favdesk.worker.BACKOFF_FIRST", 0.2)
    server = EmbeddedRedis(tmp_path / "r").start()  # persistent: the queued job survives
    queue.enqueue_import(redisconn.connect(server.url), "u1", func=jobs.quick)
    server.stop()
    controller, recorder = make_controller(server.url)
    controller.start()  # Redis is down: the burst fails
    deadline = time.monotonic() + 10
    while controller.last_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert controller.last_error is not None

    with EmbeddedRedis(tmp_path / "r"):  # Redis is back; nobody kicks the worker
        _, _, _, ok, _ = recorder.wait_finished("u1")
        assert ok
        controller.stop(timeout=10)
