"""The command meter: favdesk counts the Redis commands it sends in the client, at no cost,
and its count is the server's."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
import redis

from favdesk import meter, queue, redisconn
from favdesk.meter import CommandMeter, CommandUsage, count
from favdesk.runtime import Runtime
from favdesk.settings import load_settings
from tests import jobs


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_meter_keeps_the_last_minute_and_hour_second_by_second():
    clock = Clock()
    meter_ = CommandMeter(clock)
    meter_.add(5)  # 3,610 s ago by the end: out of the hour
    clock.now += 30
    meter_.add(3)
    clock.now += 25 * 60
    meter_.add(2)
    clock.now += 35 * 60 - 30
    meter_.add()
    clock.now += 10
    reading = meter_.reading()
    assert (reading.last_minute, reading.last_hour) == (1, 3 + 2 + 1)
    assert len(reading.per_minute) == 60 and reading.per_minute[-1] == 1
    assert sum(reading.per_minute) == reading.last_hour
    assert meter_.total == 11


def test_a_quiet_process_reads_flat():
    clock = Clock()
    meter_ = CommandMeter(clock)
    meter_.add(7)
    clock.now += 3600
    assert meter_.reading() == meter.CommandCount()


def test_the_month_is_the_last_hour_times_720_against_the_quota():
    hour = count([{1000: 600}], now=1000)
    usage = CommandUsage.of(hour, hour, quota=500_000)
    assert usage.month_projection == 600 * 720
    assert usage.quota_share == pytest.approx(0.864)


def test_a_client_meter_counts_into_the_process_meter_too():
    process = CommandMeter()
    client = CommandMeter(parent=process)
    client.add(2)
    process.add(1)
    assert (client.total, process.total) == (2, 3)


def test_processes_on_one_machine_add_up_through_the_data_dir(tmp_path):
    clock = Clock()
    here = CommandMeter(clock)
    here.publish_to(tmp_path)
    here.add(4)
    now = int(clock.now)
    other = {"pid": 1, "seconds": {str(now - 10): 6, str(now - 4000): 9}}
    (tmp_path / "1.json").write_text(json.dumps(other))
    gone = {"pid": 2, "seconds": {str(now - 3700): 5}}
    (tmp_path / "2.json").write_text(json.dumps(gone))
    (tmp_path / "3.json").write_text("not json")

    assert here.machine_reading().last_hour == 4 + 6
    assert here.reading().last_hour == 4
    assert not (tmp_path / "2.json").exists(), "a file with nothing in the last hour goes"
    here.publish()
    mine = json.loads((tmp_path / f"{os.getpid()}.json").read_text())
    assert mine["seconds"] == {str(now): 4}


def commandstats(conn: redis.Redis) -> Counter[str]:
    """Calls per command; `conn` is a plain client, so the meter does not count these INFOs."""
    stats = conn.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()})


def test_the_apps_count_is_the_servers_commandstats(private_redis, monkeypatch):
    """The issue's check: the meter's count for the app's own connection matches the server's
    `INFO commandstats` delta (a private server that only this test and the app talk to)."""
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    server = redis.Redis.from_url(private_redis.url)
    with Runtime(load_settings()) as runtime:
        before, counted = commandstats(server), runtime.app_meter.total
        runtime.status()
        queue.enqueue_import(runtime.app_redis, "u1", func=jobs.quick)
        runtime.status(full=True)
        runtime.pause_queue(by="test")
        runtime.workers()
        runtime.resume_queue()
        runtime.status()
        runtime.server_commands()
        pipe = runtime.app_redis.pipeline()  # a transaction: MULTI and EXEC count too
        pipe.get("a").get("b").execute()
        sent = runtime.app_meter.total - counted
        delta = commandstats(server) - before
    delta["info"] -= 1  # the second snapshot's own INFO
    # enqueue runs RQ's Lua script: one command sent; the server counts what it ran inside too
    inside_the_script = {"exists", "hset", "rpush"}
    assert sum(delta.values()) - sum(delta[c] for c in inside_the_script) == sent
    assert sent > 20


def test_the_apps_count_without_scripts_is_exactly_the_servers(private_redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    server = redis.Redis.from_url(private_redis.url)
    with Runtime(load_settings()) as runtime:
        runtime.status()  # the first read also sends INFO server
        before, counted = commandstats(server), runtime.app_meter.total
        for _ in range(3):
            runtime.status()
        runtime.pause_queue(by="test")
        fleet = runtime.workers()
        runtime.resume_queue()
        runtime.clean_workers([w.name for w in fleet.expired])
        sent = runtime.app_meter.total - counted
        delta = commandstats(server) - before
    delta["info"] -= 1
    assert sum(delta.values()) == sent
    assert +delta == Counter(
        {"llen": 3, "zcard": 15, "get": 4, "set": 1, "publish": 2, "smembers": 1, "del": 1}
    )


def test_a_connection_counts_pipelines_pubsub_and_its_handshake(private_redis):
    server = redis.Redis.from_url(private_redis.url)
    counter = CommandMeter()
    before = commandstats(server)
    client = redisconn.connect(private_redis.url, counter=counter)
    client.set("k", 1)
    client.pipeline(transaction=False).get("k").llen("l").execute()
    pubsub = client.pubsub()
    pubsub.subscribe("channel")
    pubsub.get_message(timeout=1)
    pubsub.close()
    delta = commandstats(server) - before
    delta["info"] -= 1
    # HELLO, SET, GET, LLEN, SUBSCRIBE (the pub/sub takes the idle connection)
    assert counter.total == sum(delta.values()) == 5
    assert delta["hello"] == 1 and "client|setinfo" not in delta  # no SETINFO pair


@pytest.mark.slow
def test_status_json_reports_the_machines_commands_and_redis_own_count(
    private_redis, monkeypatch, favdesk_cli
):
    """`favdesk status --json` adds up what the favdesk processes here sent (this test's app
    too, through the data dir) and asks Redis for its own total."""
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    with Runtime(load_settings()) as runtime:
        for _ in range(20):
            runtime.status()
        meter.PROCESS.publish()
        result = favdesk_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    reported = json.loads(result.stdout)
    commands = reported["commands"]
    assert commands["machine"]["last_hour"] >= 20 * 7 + commands["process"]["last_hour"]
    assert commands["quota"] == 500_000
    assert commands["month_projection"] == commands["machine"]["last_hour"] * 720
    assert len(commands["machine"]["per_minute"]) == 60
    assert reported["server_commands"] > 20 * 7
    assert reported["queue_paused"] is None
    text = favdesk_cli("status").stdout
    assert "Redis commands from favdesk on this machine: " in text
    assert "Redis's own count: " in text
