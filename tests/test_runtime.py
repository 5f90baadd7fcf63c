"""The runtime's dashboard read: cheap enough to poll, and never stale about jobs."""

from __future__ import annotations

from favdesk import queue, redisconn
from favdesk.runtime import Runtime
from favdesk.settings import load_settings
from tests import jobs
from tests.jobs import CommandMeter


def test_a_poll_with_nothing_changed_is_one_round_trip_of_seven_commands(
    private_redis, monkeypatch
):
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    with Runtime(load_settings()) as runtime:
        first = runtime.status()
        assert first.redis.reachable and first.redis.version and first.redis.latency_ms > 0
        meter = CommandMeter(redisconn.connect(private_redis.url))
        runtime.status()
        # the queue's depth and its pause; no PING, no INFO, no job reads
        assert meter.delta() == {"llen": 1, "zcard": 5, "get": 1}

        queue.enqueue_import(runtime.app_redis, "u1", func=jobs.quick)
        polled = runtime.status()
        assert polled.counts["queued"] == 1
        assert [job.id for job in polled.jobs] == [queue.import_job_id("u1")]
