"""Automatic backups in the app: the controller starts the schedule, an owed slot runs through
the real worker (Spotify stand-in, real Redis, local storage), and a notification says what
changed, or why it failed and what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from favdesk.gui.controller import AppController
from favdesk.runtime import Runtime, open_runtime
from favdesk.settings import load_settings
from tests.test_history_commands import TODAY, YESTERDAY, move
from tests.test_ingest import USER, browser, configured_sandbox


@pytest.fixture
def spotify(redis_url, monkeypatch):
    with configured_sandbox(60, redis_url, monkeypatch) as server:
        yield server


@pytest.fixture
def backed_up(spotify):
    """A linked account with yesterday's snapshot."""
    with Runtime(load_settings()) as runtime:
        result = runtime.link(open_browser=browser, run_import_here=False)
        runtime.worker.start()
        assert runtime.worker.join(30)
        assert runtime.files(USER)
        move(runtime, TODAY, YESTERDAY)
        assert result.job_id


def owed_opener(settings, listener) -> Runtime:
    """The app's runtime, its schedule one day ahead (so today's slot is owed) and without the
    start-up delay."""
    runtime = open_runtime(settings, listener=listener)
    runtime.scheduler.startup_delay = 0.0
    runtime.scheduler.clock = lambda: datetime.now(UTC) + timedelta(days=1)
    return runtime


@pytest.fixture
def controller(qtbot, settings):
    made = AppController(load_settings(), opener=owed_opener)
    yield made
    made.shutdown()


def notified(qtbot, controller, title: str) -> str:
    with qtbot.waitSignal(
        controller.notified, timeout=30_000, check_params_cb=lambda got, _message: got == title
    ) as signal:
        controller.start()
    return signal.args[1]


def test_after_an_automatic_backup_a_notification_says_what_changed(
    qtbot, spotify, backed_up, controller
):
    spotify.add_tracks(4)
    spotify.remove_tracks(1, at=30)
    message = notified(qtbot, controller, "Automatic backup done")
    assert message == f"User {USER}: +4 songs, -1 song since {YESTERDAY} (63 songs)."
    qtbot.waitUntil(lambda: controller.state.schedule is not None)
    assert controller.state.schedule.next_run > datetime.now(UTC) + timedelta(days=1)


def test_a_failed_automatic_backup_says_why_and_what_to_do(qtbot, spotify, backed_up, controller):
    spotify.revoke_refresh_tokens()
    spotify.expire_access_tokens()
    message = notified(qtbot, controller, "Automatic backup failed")
    assert "press Link again" in message
