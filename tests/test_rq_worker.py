"""Canaries for every RQ and redis-py internal favdesk's worker overrides or calls.

rq is pinned; when an upgrade renames a hook, changes its arguments or the order RQ calls
them in, these fail first, each naming what changed (see favdesk/rq_worker.py).
"""

from __future__ import annotations

import inspect
import time

import pytest
from rq import SimpleWorker
from rq.command import send_shutdown_command
from rq.worker.base import BaseWorker

from favdesk import redisconn
from favdesk.rq_worker import EmbeddedWorker


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
