"""The app meets a Redis that is away: at start, and for a minute while it is open.

It says so (Redis panel, Worker panel, tray tooltip), keeps running, and recovers by itself.
"""

from __future__ import annotations

import time

import pytest

from favdesk.gui import poller as poller_module
from favdesk.gui.app import Desktop
from favdesk.worker_events import WorkerState
from tests.gui.test_app_live import LONG, app_settings, click, durable_redis, link, spotify

__all__ = ["app_settings", "durable_redis", "spotify"]  # fixtures this module uses

#: Each test keeps Redis away for a while on purpose.
pytestmark = pytest.mark.slow
WAITING = "Waiting for Redis since "


@pytest.fixture
def open_app(qtbot, spotify):
    """Start the real app without waiting for its worker (it may be waiting for Redis)."""
    started: list[Desktop] = []

    def start(settings) -> Desktop:
        desktop = Desktop(settings, quit_app=lambda: None)
        started.append(desktop)
        desktop.start()
        qtbot.waitExposed(desktop.window)
        qtbot.waitUntil(lambda: desktop.controller.state.ready, timeout=LONG)
        return desktop

    yield start
    for desktop in started:
        desktop.close()
        desktop.window.deleteLater()


@pytest.fixture
def quick_retries(monkeypatch):
    """The poller reads and retries within seconds, so a test sees an outage and the recovery
    without waiting minutes (the app reads every 30 s when idle, and backs off up to 60 s)."""
    monkeypatch.setattr(poller_module, "IDLE_INTERVAL", 2.0)
    monkeypatch.setattr(poller_module, "BACKOFF", (0.5, 1.0, 2.0, 4.0))


def test_redis_away_when_the_app_starts_is_said_and_the_app_recovers_by_itself(
    qtbot, open_app, app_settings, durable_redis, quick_retries
):
    durable_redis.stop()
    desktop = open_app(app_settings(durable_redis.url))
    window, controller = desktop.window, desktop.controller
    qtbot.waitUntil(lambda: window.redis.status.words.startswith("Redis unreachable"), timeout=LONG)
    qtbot.waitUntil(lambda: window.worker.status.words.startswith(WAITING), timeout=LONG)
    assert window.windowTitle().startswith(WAITING)

    durable_redis.start()
    qtbot.waitUntil(lambda: window.redis.status.words == "Reachable", timeout=LONG)
    qtbot.waitUntil(lambda: not window.worker.status.words.startswith(WAITING), timeout=LONG)
    link(qtbot, desktop)  # linking and the first sync work without a restart
    assert controller.state.outcome.ok


@pytest.mark.timeout(240)
def test_redis_away_for_a_minute_with_the_app_open_is_ridden_out(
    qtbot, open_app, app_settings, durable_redis, quick_retries
):
    desktop = open_app(app_settings(durable_redis.url))
    window, controller = desktop.window, desktop.controller
    qtbot.waitUntil(lambda: controller.state.worker == WorkerState.IDLE, timeout=LONG)
    link(qtbot, desktop)
    first = controller.state.outcome

    durable_redis.stop()
    qtbot.waitUntil(lambda: window.redis.status.words.startswith("Redis unreachable"), timeout=LONG)
    click(qtbot, window.account.sync)  # asked while Redis is away: said, not lost silently
    qtbot.waitUntil(lambda: controller.state.notice is not None, timeout=LONG)
    away_until = time.monotonic() + 60
    while time.monotonic() < away_until:  # a minute away, the app stays up and says so
        qtbot.wait(1000)
        assert window.redis.status.words.startswith("Redis unreachable")
    durable_redis.start()

    qtbot.waitUntil(lambda: window.redis.status.words == "Reachable", timeout=LONG)
    qtbot.waitUntil(lambda: not window.worker.status.words.startswith(WAITING), timeout=LONG)
    click(qtbot, window.account.sync)
    qtbot.waitUntil(lambda: controller.state.outcome is not first, timeout=LONG)
    assert controller.state.outcome.ok
