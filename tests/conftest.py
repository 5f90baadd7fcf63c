"""Shared fixtures: an isolated environment per test, a private real Redis, a test keyring."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring  # noqa: E402
import pytest  # noqa: E402
import redis  # noqa: E402

from favdesk.embedded_redis import EmbeddedRedis  # noqa: E402
from tests.support.memkeyring import FileKeyring  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: Variables a developer's shell may carry that would point tests at real services.
FOREIGN_PREFIXES = (
    "SPOTIFY_",
    "UPSTASH_",
    "REDIS_",
    "SUPABASE_",
    "NEXT_PUBLIC_SUPABASE",
    "FAVDESK_",
)


@pytest.fixture(autouse=True)
def isolated_env(request, tmp_path, monkeypatch):
    """Each test gets its own data and config dirs, no foreign settings, and a fresh keyring.

    The keyring is a file-backed test backend selected through PYTHON_KEYRING_BACKEND, so CLI
    subprocesses see the same entries; tests marked `real_keyring` keep the machine's backend.
    """
    for name in list(os.environ):
        if name == "FAVDESK_REAL_KEYRING":
            continue
        if name.startswith(FOREIGN_PREFIXES) or name == "REDIRECT_URI":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAVDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FAVDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    if request.node.get_closest_marker("real_keyring"):
        yield
        return
    previous = keyring.get_keyring()
    monkeypatch.setenv("FAVDESK_TEST_KEYRING_FILE", str(tmp_path / "keyring.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.support.memkeyring.FileKeyring")
    keyring.set_keyring(FileKeyring())
    yield
    keyring.set_keyring(previous)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server of the tests' own, on a unix socket: nothing else shares it."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=False) as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    """The shared test server, emptied after each test (it holds only what tests wrote)."""
    yield redis_server.url
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()


@pytest.fixture
def private_redis(tmp_path_factory):
    """A server for one test alone, for counting commands with INFO commandstats."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis1"), persistent=False) as server:
        yield server


@pytest.fixture
def favdesk_cli():
    """Run `python -m favdesk ...` in a subprocess with the test's environment."""
    import subprocess

    def run(*args: str, timeout: float = 120, **kwargs):
        return subprocess.run(
            [sys.executable, "-m", "favdesk", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )

    return run
