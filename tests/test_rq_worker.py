"""Canaries for every RQ and redis-py internal favdesk's worker overrides or calls.

rq is pinned; when an upgrade renames a hook, changes its arguments or the order RQ calls
them in, these fail first, each naming what changed (see favdesk/rq_worker.py).
"""

from __future__ import annotations

import inspect
import json
import threading
import time

import pytest
from rq import SimpleWorker
from rq.command import parse_payload, send_command, send_shutdown_command, send_stop_job_command
from rq.worker import WorkerStatus
from rq.worker.base import BaseWorker

from favdesk import keys, queue, redisconn
from favdesk.rq_worker import EmbeddedWorker
from favdesk.worker import WorkerController
from tests import jobs


@pytest.fixture
def app(redis_url):
    return redisconn.connect(redis_url)


def test_rq_still_has_the_private_hooks_favdesk_overrides():
    """rq is pinned; if an upgrade renames these, the embedded worker would break silently."""
    work = inspect.getsource(BaseWorker.work)
    assert "self._install_signal_handlers()" in work
    assert "self._stop_requested" in work
    dequeue = inspect.getsource(BaseWorker.dequeue_job_and_maintain_ttl)
    assert dequeue.index("self.reorder_queues(") < dequeue.rindex("self.heartbeat()")
    for name in ("handle_payload", "handle_execution_ended", "prepare_job_execution"):
        assert name in vars(BaseWorker), name
    assert "_install_signal_handlers" in vars(EmbeddedWorker)


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("_install_signal_handlers", ["self"]),
        ("subscribe", ["self"]),
        ("unsubscribe", ["self"]),
        ("handle_payload", ["self", "message"]),
        ("handle_exception", ["self", "job", "exc_info"]),
        ("run_maintenance_tasks", ["self"]),
        ("dequeue_job_and_maintain_ttl", ["self", "timeout", "max_idle_time"]),
        ("reorder_queues", ["self", "reference_queue"]),
        ("heartbeat", ["self", "timeout", "pipeline"]),
        ("execute_job", ["self", "job", "queue"]),
        ("prepare_job_execution", ["self", "job", "remove_from_intermediate_queue"]),
        ("get_heartbeat_ttl", ["self", "job"]),
        ("handle_execution_ended", ["self", "job", "queue", "heartbeat_ttl"]),
        ("maintain_heartbeats", ["self", "job"]),
        ("teardown", ["self"]),
        ("handle_job_success", ["self", "job", "queue", "started_job_registry"]),
        ("handle_job_failure", ["self", "job", "queue", "started_job_registry", "exc_string"]),
        ("register_birth", ["self"]),
        ("register_death", ["self"]),
        ("set_state", ["self", "state", "pipeline"]),
    ],
)
def test_rq_hooks_favdesk_overrides_or_calls_keep_their_signature(name, parameters):
    """Each RQ worker method favdesk overrides or calls, as the pinned rq defines it."""
    assert list(inspect.signature(getattr(SimpleWorker, name)).parameters) == parameters


def test_redis_pubsub_calls_favdesk_makes_keep_their_signature():
    from redis.client import PubSub

    assert list(inspect.signature(PubSub.get_message).parameters) == [
        "self",
        "ignore_subscribe_messages",
        "timeout",
    ]
    assert "pubsub_channel_name" in dir(SimpleWorker)


def test_stopping_the_command_listener_does_not_wait_out_its_read(app):
    """redis-py 8.2's PubSubWorkerThread.stop() waited out RQ's 60 s read; favdesk's must not.

    The bound is a hang detector (60 s before the fix), not a speed target.
    """
    worker = EmbeddedWorker(connection=app)
    worker.subscribe()
    listener = worker.pubsub_thread
    assert listener.is_alive()
    assert app.pubsub_numsub(worker.pubsub_channel_name)[0][1] == 1
    started = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - started < 2
    assert not listener.is_alive()
    assert app.pubsub_numsub(worker.pubsub_channel_name)[0][1] == 0


def test_the_command_listener_dispatches_rq_commands(app):
    worker = EmbeddedWorker(connection=app)
    worker.subscribe()
    try:
        send_shutdown_command(app, worker.name)
        deadline = time.monotonic() + 10
        while not worker.shutdown_commanded:
            assert time.monotonic() < deadline, "the shutdown command never arrived"
            time.sleep(0.01)
        assert worker.stop_requested
    finally:
        worker.unsubscribe()


def test_an_unsubscribe_reply_ends_a_blocking_pubsub_read(app):
    """What `_CommandListener.stop()` relies on: redis-py returns from a long read at once."""
    pubsub = app.pubsub()
    pubsub.subscribe(**{"favdesk-canary": lambda message: None})
    returned = threading.Event()

    def read() -> None:
        pubsub.get_message(ignore_subscribe_messages=True, timeout=60)
        pubsub.get_message(ignore_subscribe_messages=True, timeout=60)  # the unsubscribe reply
        returned.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.2)  # let the reader block in its read
    pubsub.unsubscribe()
    assert returned.wait(5), "the read did not end with the UNSUBSCRIBE reply"
    pubsub.close()


def test_rq_commands_arrive_as_payloads_favdesk_can_parse():
    message = {"type": "message", "data": json.dumps({"command": "shutdown"}).encode()}
    assert parse_payload(message) == {"command": "shutdown"}


def test_rq_stop_job_is_published_to_the_running_workers_channel_as_favdesk_reads_it(app):
    """`EmbeddedWorker.handle_payload` cancels between pages on this payload, and
    `queue.cancel_job` sends the same one through `send_command`."""
    worker = SimpleWorker(["spotify-ingest"], connection=app)
    pubsub = app.pubsub()
    pubsub.subscribe(worker.pubsub_channel_name)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    queue.ingest_queue(app).enqueue(jobs.quick, "u1", job_id="ingest-u1")
    app.hset(keys.job_key("ingest-u1"), mapping={"status": "started", "worker_name": worker.name})
    send_stop_job_command(app, "ingest-u1")
    message = pubsub.get_message(timeout=5)
    pubsub.close()
    assert parse_payload(message) == {"command": queue.STOP_JOB, "job_id": "ingest-u1"}
    assert list(inspect.signature(send_command).parameters) == [
        "connection",
        "worker_name",
        "command",
        "kwargs",
    ]


def test_rq_writes_the_worker_fields_the_workers_view_reads(app):
    """fleet.py reads RQ's worker hash directly (one HGETALL a worker, pipelined)."""
    worker = SimpleWorker(["spotify-ingest"], connection=app)
    worker.register_birth()
    worker.set_state(WorkerStatus.SUSPENDED)
    worker.heartbeat()
    fields = {k.decode() for k in app.hgetall(worker.key)}
    assert {"hostname", "pid", "queues", "state", "last_heartbeat"} <= fields
    assert app.sismember(keys.WORKERS_KEY, worker.key)
    assert app.sismember(keys.QUEUE_WORKERS_KEY, worker.key)
    assert WorkerStatus.SUSPENDED == "suspended"
    assert "current_job" in inspect.getsource(BaseWorker.set_current_job_id)
    worker.register_death()
    assert not app.sismember(keys.WORKERS_KEY, worker.key)


def test_rq_checks_suspension_before_each_dequeue_where_favdesk_waits_out_its_pause():
    """favdesk's pause waits inside `dequeue_job_and_maintain_ttl`, which the work loop calls
    after `check_for_suspension`, each time round."""
    work = inspect.getsource(BaseWorker.work)
    assert work.index("self.check_for_suspension(") < work.index(
        "self.dequeue_job_and_maintain_ttl("
    )
    assert "if result is None:" in work


def test_redis_py_writes_commands_through_the_hooks_the_meter_counts():
    """redisconn's counting connection overrides these; test_meter checks the count against
    the server's INFO commandstats."""
    from redis.connection import AbstractConnection, Connection

    assert list(inspect.signature(AbstractConnection.send_command).parameters) == [
        "self",
        "args",
        "kwargs",
    ]
    assert list(inspect.signature(Connection.pack_commands).parameters) == ["self", "commands"]
    assert redisconn.NO_CLIENT_SETINFO in (
        {"driver_info": None},
        {"lib_name": None, "lib_version": None},
    )


def test_the_key_names_favdesk_reads_are_the_ones_rq_writes(app, redis_url):
    """keys.py derives RQ's names from RQ's classes; a running job must show up under them."""
    plan = jobs.PLANS["u1"] = jobs.Plan()
    queue.enqueue_import(app, "u1", func=jobs.paged)
    assert app.llen(keys.QUEUE_KEY) == 1
    controller = WorkerController(lambda: redisconn.connect(redis_url, for_worker=True))
    controller.start()
    try:
        assert plan.holding.wait(10)
        (member,) = [m.decode() for m in app.zrange(keys.REGISTRY_KEYS["started"], 0, -1)]
        assert member.startswith(queue.import_job_id("u1") + ":")
        assert app.exists(keys.job_key(queue.import_job_id("u1")))
        worker_name = app.hget(keys.execution_key(member), "worker_name").decode()
        assert worker_name == controller.worker_name
        assert app.exists(keys.worker_key(worker_name))
    finally:
        plan.gate.set()
        controller.stop(timeout=10)
        jobs.PLANS.clear()
    assert app.zcard(keys.REGISTRY_KEYS["finished"]) == 1


def test_worker_attributes_favdesk_sets_or_reads_exist_on_rq_workers(app):
    worker = SimpleWorker(["spotify-ingest"], connection=app)
    for name in (
        "_stop_requested",
        "job_monitoring_interval",
        "pubsub",
        "pubsub_thread",
        "execution",
    ):
        assert hasattr(worker, name), name
    assert "death_penalty_class" in vars(BaseWorker) or hasattr(SimpleWorker, "death_penalty_class")
    assert hasattr(SimpleWorker, "log_result_lifespan")


def test_rq_refuses_a_second_birth_until_the_first_registration_is_dead(app):
    """What `forget_registration` relies on after Redis came back from its append-only file."""
    worker = SimpleWorker(["spotify-ingest"], connection=app)
    worker.register_birth()
    with pytest.raises(ValueError, match="There exists an active worker named"):
        worker.register_birth()
    worker.register_death()
    worker.register_birth()
    assert app.exists(keys.worker_key(worker.name))
    worker.register_death()


def test_rq_teardown_registers_death_before_it_unsubscribes():
    """So a failed `register_death` skips RQ's unsubscribe: favdesk's teardown stops the
    command listener itself."""
    teardown = inspect.getsource(BaseWorker.teardown)
    assert teardown.index("self.register_death()") < teardown.index("self.unsubscribe()")
