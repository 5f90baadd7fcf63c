"""The command line's edge: usage, and signals that end a command without leaving debris."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import redis

from favdesk.embedded_redis import EmbeddedRedis


@pytest.mark.slow
def test_sigterm_ends_a_command_and_stops_its_embedded_redis(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "favdesk", "link", "--no-browser", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = [process.stdout.readline() for _ in range(2)]
    assert lines[1].startswith("Open this URL to log in to Spotify: ")
    socket_path = EmbeddedRedis(tmp_path / "data" / "redis").socket_path
    assert redis.Redis(unix_socket_path=str(socket_path)).ping()

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == "favdesk: interrupted"
    assert not socket_path.exists()


def test_help_lists_every_command(favdesk_cli):
    result = favdesk_cli("--help")
    assert result.returncode == 0
    commands = ("link", "unlink", "sync", "status", "files", "worker", "demo", "pause", "resume")
    for command in (*commands, "workers", "cancel", "stop-worker"):
        assert command in result.stdout
