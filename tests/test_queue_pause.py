"""favdesk's queue pause: every favdesk worker stops taking jobs, waits for the resume on its
subscription without sending a command, and runs what was queued once resumed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time

import pytest
import redis
from rq.job import JobStatus

from favdesk import fleet, keys, queue, redisconn
from favdesk.runtime import Runtime
from favdesk.settings import load_settings
from favdesk.standalone import run_standalone
from favdesk.worker_events import WorkerState
from tests import jobs
from tests.jobs import CommandMeter
from tests.test_worker import (  # noqa: F401 - fixtures
    app,
    hold,
    job_status,
    make_controller,
    quiet_window,
    release_jobs,
    wait_until_blocked,
)

STANDALONE = (
    "import sys; from favdesk.redisconn import connect; "
    "from favdesk.standalone import run_standalone; "
    "sys.exit(run_standalone(lambda: connect({url!r}, for_worker=True), burst=False))"
)


def wake_ups_done(timeout: float = 10) -> None:
    """Until no thread is waking a worker (it ends a moment after the worker woke)."""
    deadline = time.monotonic() + timeout
    while any(t.name == "favdesk-wake" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "a wake-up thread kept running"
        time.sleep(0.02)


@pytest.mark.slow
def test_a_pause_stops_a_waiting_workers_intake_within_a_second(app, make_controller):  # noqa: F811
    controller, recorder = make_controller(wait_for_other_jobs=True)
    controller.start()
    wait_until_blocked(app)

    started = time.monotonic()
    queue.pause_queue(app, "test")
    recorder.wait_state(WorkerState.QUEUE_PAUSED, timeout=1)
    assert time.monotonic() - started < 1
    assert ("queue", True) in recorder.events

    queue.enqueue_import(app, "u1", func=jobs.quick)
    quiet_window(0.3)
    assert job_status(app, "u1") is JobStatus.QUEUED
    wake_ups_done()
    assert not app.keys("rq:job:favdesk-wake-*"), "the wake-up job was left behind"

    assert queue.resume_queue(app) is True
    assert recorder.wait_finished("u1")[3] is True
    recorder.wait_state(WorkerState.WAITING)


@pytest.mark.slow
def test_a_paused_waiting_worker_sends_no_command(private_redis, make_controller):  # noqa: F811
    url = private_redis.url
    conn = redisconn.connect(url)
    meter = CommandMeter(redisconn.connect(url))
    controller, recorder = make_controller(url, wait_for_other_jobs=True)
    controller.start()
    wait_until_blocked(conn)
    queue.pause_queue(conn, "test")
    recorder.wait_state(WorkerState.QUEUE_PAUSED)
    wake_ups_done()

    meter.reset()
    quiet_window(2.0)
    assert meter.delta() == {}, "paused"
    state = conn.hget(keys.worker_key(controller.worker_name), "state")
    assert state == b"suspended"  # what the Workers view shows
    assert conn.ttl(keys.worker_key(controller.worker_name)) > 1800  # outlives the silence


@pytest.mark.slow
def test_an_idle_app_worker_waits_out_a_pause_on_its_subscription(private_redis, make_controller):  # noqa: F811
    url = private_redis.url
    conn = redisconn.connect(url)
    meter = CommandMeter(redisconn.connect(url))
    controller, recorder = make_controller(url)
    controller.start()
    assert controller.join(10)

    queue.pause_queue(conn, "test")
    queue.enqueue_import(conn, "u1", func=jobs.quick)
    controller.kick()
    recorder.wait_state(WorkerState.QUEUE_PAUSED)
    assert controller.state is WorkerState.QUEUE_PAUSED
    meter.reset()
    quiet_window(1.0)
    assert meter.delta() == {}, "paused, with work waiting"
    assert job_status(conn, "u1") is JobStatus.QUEUED

    queue.resume_queue(conn)
    assert recorder.wait_finished("u1")[3] is True
    assert controller.join(10), "the burst ends once the queue is empty"
    assert controller.state is WorkerState.IDLE


def test_a_pause_lets_the_running_job_finish_then_takes_no_new_one(app, make_controller):  # noqa: F811
    controller, recorder = make_controller()
    plan = hold("u1", hold_at=1)
    queue.enqueue_import(app, "u1", func=jobs.paged)
    queue.enqueue_import(app, "u2", func=jobs.quick)
    controller.start()
    assert plan.holding.wait(10)

    queue.pause_queue(app, "test")
    recorder.wait_for(lambda events: ("queue", True) in events)
    plan.gate.set()
    assert recorder.wait_finished("u1")[3] is True
    recorder.wait_state(WorkerState.QUEUE_PAUSED)
    assert job_status(app, "u2") is JobStatus.QUEUED

    queue.resume_queue(app)
    assert recorder.wait_finished("u2")[3] is True


def test_a_pause_that_cancels_requeues_the_running_job_and_resume_finishes_it(
    app,  # noqa: F811
    make_controller,  # noqa: F811
):
    controller, recorder = make_controller()
    plan = hold("u1", hold_at=1)
    queue.enqueue_import(app, "u1", func=jobs.paged)
    controller.start()
    assert plan.holding.wait(10)

    queue.pause_queue(app, "test", cancel_running=True)
    _, _, _, ok, error = recorder.wait_finished("u1")
    assert not ok and error.startswith("cancelled: re-queued")
    recorder.wait_state(WorkerState.QUEUE_PAUSED)
    assert job_status(app, "u1") is JobStatus.QUEUED

    plan.gate.set()
    queue.resume_queue(app)
    recorder.wait_for(lambda events: len(recorder.finished("u1", events)) == 2)
    assert recorder.finished("u1")[-1][3] is True
    assert plan.runs == 2


def test_a_worker_that_starts_while_the_queue_is_paused_takes_nothing(app, make_controller):  # noqa: F811
    queue.pause_queue(app, "test")
    queue.enqueue_import(app, "u1", func=jobs.quick)
    controller, recorder = make_controller()
    controller.start()
    recorder.wait_state(WorkerState.QUEUE_PAUSED)
    assert controller.queue_paused
    assert job_status(app, "u1") is JobStatus.QUEUED
    queue.resume_queue(app)
    assert recorder.wait_finished("u1")[3] is True


def test_the_apps_own_pause_and_stop_end_the_wait_for_a_resume(app, make_controller):  # noqa: F811
    queue.pause_queue(app, "test")
    controller, recorder = make_controller()
    controller.start()
    recorder.wait_state(WorkerState.QUEUE_PAUSED)

    controller.pause()
    recorder.wait_state(WorkerState.PAUSED)
    assert controller.join(5), "the worker thread ended"
    controller.resume()
    recorder.wait_state(WorkerState.QUEUE_PAUSED)
    assert controller.stop(timeout=5)
    assert controller.state is WorkerState.STOPPED
    assert not app.sismember(keys.WORKERS_KEY, keys.worker_key(controller.worker_name))


def test_a_burst_worker_ends_when_the_queue_is_paused(app, redis_url):  # noqa: F811
    queue.pause_queue(app, "test")
    queue.enqueue_import(app, "u1", func=jobs.quick)
    out = io.StringIO()
    code = run_standalone(
        lambda: redisconn.connect(redis_url, for_worker=True), burst=True, out=out
    )
    assert code == 0
    assert "the queue is paused: the burst ends" in out.getvalue()
    assert job_status(app, "u1") is JobStatus.QUEUED


def test_resume_says_whether_the_queue_was_paused_and_the_pause_says_who(app):  # noqa: F811
    assert queue.queue_pause(app) is None
    assert queue.resume_queue(app) is False
    queue.pause_queue(app, queue.pauser("favdesk pause"))
    paused = queue.queue_pause(app)
    assert paused is not None and paused.by.startswith("favdesk pause on ")
    assert paused.since is not None and paused.since.tzinfo is not None
    app.set(keys.QUEUE_PAUSED_KEY, "1")  # set by another tool: still paused
    assert queue.queue_pause(app) == queue.QueuePause(None, "another program")
    assert queue.resume_queue(app) is True


@pytest.mark.slow
def test_a_pause_missed_while_disconnected_is_read_on_reconnect(app, make_controller):  # noqa: F811
    controller, recorder = make_controller(wait_for_other_jobs=True)
    controller.start()
    wait_until_blocked(app)
    killed = app.client_kill_filter(_type="pubsub")
    assert killed >= 1
    app.set(keys.QUEUE_PAUSED_KEY, queue.QueuePause(None, "test").encode())  # no notice sent
    recorder.wait_state(WorkerState.QUEUE_PAUSED, timeout=10)
    queue.enqueue_import(app, "u1", func=jobs.quick)
    quiet_window(0.3)
    assert job_status(app, "u1") is JobStatus.QUEUED
    queue.resume_queue(app)
    assert recorder.wait_finished("u1")[3] is True


# --- two worker processes ----------------------------------------------------------------------


def start_worker_process(url: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", STANDALONE.format(url=url)], stdout=subprocess.PIPE, text=True
    )
    assert "worker started" in process.stdout.readline()
    return process


def worker_states(conn: redis.Redis) -> dict[str, str]:
    return {w.name: w.state for w in fleet.read_fleet(conn).workers if not w.expired}


def wait_for(check, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, what
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_worker_processes_pause_for_a_minute_in_silence_and_resume(
    private_redis, favdesk_cli, monkeypatch
):
    """The issue's scenario: a pause from one app stops two `favdesk worker` processes'
    intake within a second; paused, they send Redis nothing for a minute; `favdesk resume`
    runs what was queued meanwhile."""
    url = private_redis.url
    monkeypatch.setenv("REDIS_URL", url)
    conn = redis.Redis.from_url(url)
    meter = CommandMeter(conn)
    workers = [start_worker_process(url), start_worker_process(url)]
    try:
        wait_until_blocked(conn, 2)
        assert all(fleet.is_favdesk(name) for name in worker_states(conn))

        with Runtime(load_settings()) as app:
            app.pause_queue(by="the app")
            took = wait_for(
                lambda: set(worker_states(conn).values()) == {"suspended"},
                1.0,
                "the other workers' intake did not stop within a second",
            )
        queue.enqueue_import(conn, "u1", func="tests.jobs.quick")
        queue.enqueue_import(conn, "u2", func="tests.jobs.quick")
        quiet_window(3.0)  # the wake-up jobs of the blocked pops are gone by then
        assert job_status(conn, "u1") is JobStatus.QUEUED

        meter.reset()
        quiet_window(60.0)
        assert meter.delta() == {}, "two paused workers over a minute"

        listed = json.loads(favdesk_cli("workers", "--json").stdout)
        assert listed["pause"]["by"].startswith("the app on ")
        assert {w["state"] for w in listed["workers"]} == {"suspended"}

        assert favdesk_cli("resume").returncode == 0
        wait_for(
            lambda: {job_status(conn, u) for u in ("u1", "u2")} == {JobStatus.FINISHED},
            10.0,
            "the queued jobs did not run after the resume",
        )
        print(f"both workers' intake stopped {took * 1000:.0f} ms after the pause")
    finally:
        for process in workers:
            process.terminate()
            process.wait(15)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_favdesk_pause_cancel_from_a_terminal_requeues_the_running_import(
    redis_url,
    app,  # noqa: F811
    favdesk_cli,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("FAVDESK_TEST_MARKERS", str(tmp_path))
    queue.enqueue_import(app, "u1", func="tests.jobs.until_released")
    process = start_worker_process(redis_url)
    try:
        wait_for((tmp_path / "u1.started").exists, 10, "the job never started")
        paused = favdesk_cli("pause", "--cancel")
        assert paused.returncode == 0, paused.stderr
        assert "running imports are cancelled between pages and re-queued" in paused.stdout
        wait_for(lambda: job_status(app, "u1") is JobStatus.QUEUED, 10, "not re-queued")
        status = favdesk_cli("status").stdout
        assert "Queue spotify-ingest: paused since " in status and "by favdesk pause on" in status

        (tmp_path / "u1.release").touch()
        assert favdesk_cli("resume").stdout.strip() == "Queue spotify-ingest resumed."
        wait_for(lambda: job_status(app, "u1") is JobStatus.FINISHED, 10, "not resumed")
    finally:
        process.terminate()
        process.wait(15)
