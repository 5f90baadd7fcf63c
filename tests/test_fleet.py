"""Every worker on the Redis, seen and steered from any favdesk: listed with host, kind, state,
job and progress; expired registrations cleaned up; a remote job cancelled between pages; a
remote worker stopped."""

from __future__ import annotations

import json

import pytest
from rq import SimpleWorker
from rq.command import send_command
from rq.job import JobStatus

from favdesk import fleet, keys, queue, sync_status
from favdesk.errors import QueueError
from favdesk.worker_events import WorkerState
from tests import jobs
from tests.test_queue_pause import start_worker_process, wait_for
from tests.test_worker import (  # noqa: F401 - fixtures
    app,
    hold,
    job_status,
    make_controller,
    release_jobs,
    wait_until_blocked,
)


def running_job(app, make_controller):  # noqa: F811
    """An app worker busy with u1's import, held before its second page."""
    controller, recorder = make_controller()
    plan = hold("u1", hold_at=1)
    job_id = queue.enqueue_import(app, "u1", func=jobs.paged).job_id
    controller.start()
    assert plan.holding.wait(10)
    return controller, recorder, plan, job_id


def test_every_worker_is_listed_with_its_kind_host_state_job_and_progress(app, make_controller):  # noqa: F811
    controller, _recorder, _plan, job_id = running_job(app, make_controller)
    sync_status.set_progress(app, "u1", job_id, 50, 120, "fetching")
    stock = SimpleWorker([keys.QUEUE_NAME], connection=app)
    stock.register_birth()
    app.sadd(keys.WORKERS_KEY, keys.worker_key("gone-worker"))  # its hash expired

    found = fleet.read_fleet(app)
    by_name = {w.name: w for w in found.workers}
    mine = by_name[controller.worker_name]
    assert mine.favdesk and mine.kind == "favdesk app"
    assert mine.state == "busy" and mine.job_id == job_id and mine.user_id == "u1"
    assert (mine.progress.fetched, mine.progress.total) == (50, 120)
    assert mine.host and mine.pid and mine.last_heartbeat is not None and mine.on_queue
    other = by_name[stock.name]
    assert not other.favdesk and other.kind == "stock RQ" and other.state == "unknown"
    assert found.stock_on_queue == (other,)
    assert [w.name for w in found.expired] == ["gone-worker"]
    assert found.workers[-1].name == "gone-worker"  # favdesk's first, expired last
    assert found.pause is None

    assert fleet.clean_expired(app, ["gone-worker", controller.worker_name]) == 1
    assert {w.name for w in fleet.read_fleet(app).workers} == {controller.worker_name, stock.name}
    stock.register_death()


def test_a_read_is_two_round_trips_and_three_with_a_running_job(private_redis):
    from favdesk import redisconn
    from tests.jobs import CommandMeter

    conn = redisconn.connect(private_redis.url)
    meter = CommandMeter(redisconn.connect(private_redis.url))
    fleet.read_fleet(conn)
    assert meter.delta() == {"smembers": 1, "get": 1, "hello": 1}
    for name in ("a", "b"):
        SimpleWorker([keys.QUEUE_NAME], name=name, connection=conn).register_birth()
    meter.reset()
    fleet.read_fleet(conn)
    assert meter.delta() == {"smembers": 1, "get": 1, "hgetall": 2}


def test_cancelling_a_job_stops_it_between_pages_and_does_not_requeue_it(app, make_controller):  # noqa: F811
    controller, recorder, _plan, job_id = running_job(app, make_controller)

    assert queue.cancel_job(app, job_id) == controller.worker_name
    _, _, _, ok, error = recorder.wait_finished("u1")
    assert not ok and "stopped after 1 pages" in error
    assert job_status(app, "u1") is JobStatus.FAILED  # a person's cancel: not re-queued
    assert any("cancelled from a dashboard" in e[1] for e in recorder.events if e[0] == "log")
    assert controller.join(10) and controller.state is WorkerState.IDLE

    with pytest.raises(QueueError, match="is not running"):
        queue.cancel_job(app, job_id)
    with pytest.raises(QueueError, match="no longer exists"):
        queue.cancel_job(app, "ingest-nobody")


def test_a_cancel_for_another_job_is_ignored(app, make_controller):  # noqa: F811
    controller, recorder, plan, _job_id = running_job(app, make_controller)
    send_command(app, controller.worker_name, queue.STOP_JOB, job_id="ingest-other")
    recorder.wait_for(lambda events: any("cancel ignored" in str(e) for e in events))
    plan.gate.set()
    assert recorder.wait_finished("u1")[3] is True


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_remote_job_is_cancelled_and_a_remote_worker_stopped_from_the_cli(
    redis_url,
    app,  # noqa: F811
    favdesk_cli,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("FAVDESK_TEST_MARKERS", str(tmp_path))
    job_id = queue.enqueue_import(app, "u1", func="tests.jobs.until_released").job_id
    process = start_worker_process(redis_url)
    try:
        wait_for((tmp_path / "u1.started").exists, 10, "the job never started")
        (worker,) = json.loads(favdesk_cli("workers", "--json").stdout)["workers"]
        assert worker["kind"] == "favdesk worker" and worker["job_id"] == job_id

        cancelled = favdesk_cli("cancel", job_id)
        assert cancelled.returncode == 0, cancelled.stderr
        wait_for(lambda: job_status(app, "u1") is JobStatus.FAILED, 10, "not cancelled")
        assert process.poll() is None, "the worker keeps running"

        stopped = favdesk_cli("stop-worker", worker["name"])
        assert stopped.returncode == 0, stopped.stderr
        assert process.wait(15) == 0
        text = favdesk_cli("workers").stdout
        assert "No worker is registered on this Redis." in text
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(15)


@pytest.mark.slow
def test_workers_clean_removes_expired_registrations(redis_url, app, favdesk_cli, monkeypatch):  # noqa: F811
    monkeypatch.setenv("REDIS_URL", redis_url)
    app.sadd(keys.WORKERS_KEY, keys.worker_key("gone-worker"))
    listed = favdesk_cli("workers").stdout
    assert "gone-worker  stock RQ  ?:?  expired: heartbeat gone" in listed
    assert "`favdesk workers --clean` removes them" in listed
    assert "Removed 1 expired registration(s)." in favdesk_cli("workers", "--clean").stdout
    assert not app.smembers(keys.WORKERS_KEY)
