"""The main window renders each state from plain data, says it in words, and offers the remedy."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)
from rq.job import JobStatus

from favdesk.gui.describe import clock
from favdesk.gui.main_window import DEFAULT_SIZE, MainWindow, fitting
from favdesk.gui.panels.common import TONES, tone_colour
from favdesk.gui.panels.logview import MAX_LINES
from favdesk.gui.state import Dashboard, LinkState, LiveJob, PollPlan
from favdesk.worker_events import WorkerState
from tests.gui import samples

READY = Dashboard(
    startup="ready",
    demo_mode=True,
    storage_description="local folder ~/.local/share/favdesk/storage",
    redis_where="unix:///run/favdesk/redis.sock db 0",
    accounts=(samples.account(),),
    user_id="demo-listener",
    worker=WorkerState.IDLE,
    snapshot=samples.snapshot(sync="done"),
    files=(samples.stored_file("2026-11-28", 47_102), samples.stored_file()),
    poll=PollPlan(True, 30.0, "visible"),
)


def show(window, state, screenshot, name):
    window.show_state(state)
    screenshot(window, name)


def test_starting_says_so_and_offers_nothing_yet(window, screenshot):
    show(window, Dashboard(), screenshot, "01-starting")
    assert "Starting favdesk" in window.startup_banner.text.text()
    assert not window.account.link.isEnabled()
    assert not window.worker.pause.isEnabled()
    assert window.redis.status.words == "Not read yet"


def test_failed_start_shows_the_reason_with_settings_and_retry(window, screenshot):
    error = "REDIS_URL: unknown scheme: use redis://host:6379/0"
    show(window, Dashboard(startup="failed", startup_error=error), screenshot, "02-start-failed")
    assert window.startup_banner.text.text() == f"favdesk could not start: {error}"
    assert window.startup_settings.isVisible() and window.startup_retry.isVisible()


def test_demo_mode_with_no_account_says_how_to_leave_and_how_to_link(window, screenshot):
    state = replace(READY, accounts=(), user_id=None, snapshot=None, files=())
    show(window, state, screenshot, "03-demo-not-linked")
    assert window.demo_banner.isVisible()
    assert "set SPOTIFY_CLIENT_ID in Settings" in window.demo_banner.text.text()
    assert window.account.status.words == "Not linked: no Spotify account yet"
    assert window.account.link.isEnabled() and not window.account.sync.isEnabled()
    assert window.sync.action.text() == "Lin&k Spotify"


def test_waiting_for_the_browser_shows_the_url_and_cancel(window, screenshot):
    url = "http://127.0.0.1:43117/authorize?client_id=favdesk-demo"
    state = replace(READY, accounts=(), user_id=None, link=LinkState(waiting=True, url=url))
    show(window, state, screenshot, "04-waiting-for-browser")
    assert "Waiting for the browser" in window.account.waiting.text()
    assert url in window.account.waiting.text()
    assert window.account.cancel.isVisible() and not window.account.link.isEnabled()


def test_syncing_shows_progress_and_blocks_a_second_sync(window, screenshot):
    job = LiveJob("ingest-demo-listener", "demo-listener", 50, 120, "fetching")
    state = replace(READY, worker=WorkerState.BUSY, job=job, poll=PollPlan(True, 5.0, "visible"))
    show(window, state, screenshot, "05-syncing")
    bar = window.sync.progress
    assert (bar.value(), bar.maximum(), bar.text()) == (50, 120, "50 / 120 songs")
    assert window.sync.status.words == "Syncing: fetching"
    assert window.worker.status.words == "Running a job"
    assert not window.account.sync.isEnabled()
    assert "every 5 s" in window.redis.activity.text()


def test_the_upload_shows_megabytes(window):
    job = LiveJob("ingest-demo-listener", "demo-listener", 40 * 1024**2, 99 * 1024**2, "uploading")
    window.show_state(replace(READY, worker=WorkerState.BUSY, job=job))
    bar = window.sync.progress
    assert (bar.value(), bar.maximum(), bar.text()) == (40 * 1024, 99 * 1024, "40 / 99 MB")
    assert bar.accessibleDescription() == "40 / 99 MB uploaded"
    assert window.sync.status.words == "Syncing: uploading"


def test_progress_before_the_total_is_known_is_a_busy_bar(window):
    window.show_state(replace(READY, worker=WorkerState.BUSY, job=LiveJob("j", "demo-listener")))
    assert window.sync.progress.maximum() == 0


def test_done_shows_the_time_and_the_files(window, screenshot):
    show(window, READY, screenshot, "06-done")
    assert window.sync.status.words.startswith("Done at ")
    assert window.sync.status.tone == "ok"
    table = window.storage.table
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == [
        "2026-11-28",
        "2026-11-29",
    ]
    assert table.item(0, 1).text() == "47.1 kB"


def test_expired_link_shows_the_remedy_and_a_link_button(window, screenshot):
    state = replace(
        READY,
        accounts=(samples.account(needs_relink=True),),
        snapshot=samples.snapshot(sync="error", reason="reauth"),
    )
    show(window, state, screenshot, "07-error-reauth")
    assert window.sync.status.tone == "error"
    assert "press Link again to link the account again" in window.sync.remedy.text()
    assert window.sync.action.text() == "Lin&k again" and window.sync.action.isVisible()
    assert window.account.status.words == "Demo Listener: needs re-linking"
    assert window.account.link.text() == "&Link again"
    assert not window.account.sync.isVisible(), "an expired link cannot sync: Link again instead"
    title = "Sync failed: the Spotify link expired or was revoked (demo mode)"
    assert window.windowTitle() == title


def test_rate_limit_says_until_when(window, screenshot):
    resume = samples.NOW + timedelta(hours=1)
    snapshot = samples.snapshot(sync="error", reason="ratelimited", resume_at=resume)
    show(window, replace(READY, snapshot=snapshot), screenshot, "08-error-ratelimited")
    assert window.sync.status.words == f"Waiting for Spotify until {clock(resume)}"
    assert not window.sync.action.isVisible()


def test_redis_unreachable_says_why(window, screenshot):
    snapshot = samples.snapshot(reachable=False, error="Connection refused")
    state = replace(
        READY,
        snapshot=snapshot,
        status_error="Connection refused",
        poll=PollPlan(True, 4.0, "retrying", 2),
    )
    show(window, state, screenshot, "09-redis-unreachable")
    assert window.redis.status.words == "Redis unreachable: Connection refused"
    assert window.redis.status.tone == "error"
    assert "retrying every 4 s" in window.redis.activity.text()


def test_paused_offers_resume_and_is_quiet(window, screenshot):
    state = replace(
        READY, worker=WorkerState.PAUSED, poll=PollPlan(False, None, "the worker is paused")
    )
    show(window, state, screenshot, "10-paused")
    assert window.worker.status.words.startswith("Paused")
    assert window.worker.resume.isEnabled() and not window.worker.pause.isEnabled()
    assert window.redis.activity.text().startswith("Quiet: favdesk sends Redis no commands")


def test_failed_jobs_can_be_retried_or_deleted(window, qtbot, screenshot):
    jobs = [
        samples.job("ingest-a", JobStatus.FAILED, None, "Spotify answered 503 three times", "a"),
        samples.job("ingest-b", JobStatus.FINISHED, 120, None, "b"),
    ]
    counts = {"queued": 0, "started": 0, "finished": 1, "failed": 1, "deferred": 0, "scheduled": 0}
    window.show_state(replace(READY, snapshot=samples.snapshot(jobs=jobs, counts=counts)))
    panel = window.queue
    assert panel.counts["failed"].text() == "Failed: 1"
    panel.table.selectRow(1)
    assert not panel.retry.isEnabled()
    panel.table.selectRow(0)
    assert panel.retry.isEnabled() and panel.delete.isEnabled()
    screenshot(window, "11-failed-job")
    with qtbot.waitSignal(panel.retry_clicked) as retried:
        qtbot.mouseClick(panel.retry, Qt.MouseButton.LeftButton)
    assert retried.args == ["ingest-a"]
    with qtbot.waitSignal(panel.delete_clicked) as deleted:
        qtbot.mouseClick(panel.delete, Qt.MouseButton.LeftButton)
    assert deleted.args == ["ingest-a"]


def test_log_keeps_the_newest_lines_and_copies_them(window):
    for n in range(MAX_LINES + 50):
        window.log.append(f"[spotify-ingest] tracks: {n}")
    lines = window.log.lines()
    assert len(lines) == MAX_LINES
    assert lines[-1] == f"[spotify-ingest] tracks: {MAX_LINES + 49}"
    window.log.copy_all()
    assert QApplication.clipboard().text().splitlines()[-1] == lines[-1]


#: A state with every tone on screen: errors, a warning banner, running parts, a progress bar.
BUSY_WITH_ERRORS = replace(
    READY,
    accounts=(samples.account(needs_relink=True),),
    snapshot=samples.snapshot(
        sync="error", reason="reauth", jobs=[samples.job(state=JobStatus.FAILED, error="boom")]
    ),
    notice="Could not delete the job: it is running",
)
STATUS_WIDGETS = (QLabel, QProgressBar, QAbstractItemView, QPlainTextEdit)


def test_every_status_widget_has_an_accessible_name(window):
    syncing = replace(
        READY, worker=WorkerState.BUSY, job=LiveJob("j", "demo-listener", 5, 10, "fetching")
    )
    for state in (BUSY_WITH_ERRORS, syncing):
        window.show_state(state)
        for tab in range(window.tabs.count()):
            window.tabs.setCurrentIndex(tab)
            shown = [
                w
                for w in window.findChildren(QWidget)
                if isinstance(w, STATUS_WIDGETS) and w.isVisible()
            ]
            unnamed = [
                w
                for w in shown
                if not w.accessibleName()
                and not isinstance(w, QHeaderView)
                and not (isinstance(w, QLabel) and w.buddy() is not None)  # a form row's caption
            ]
            assert unnamed == [], [getattr(w, "text", lambda: "")() for w in unnamed]
    assert window.sync.progress.accessibleDescription() == "5 / 10 songs fetched"


def test_status_lines_say_their_state_to_screen_readers_and_buttons_take_focus(window):
    window.show_state(READY)
    for name in ("Sync status", "Worker state", "Redis reachability", "Link state"):
        labels = [w for w in window.findChildren(QLabel) if w.accessibleName() == name]
        assert labels, name
        assert labels[0].accessibleDescription()
    for button in [b for b in window.findChildren(QPushButton) if b.isVisible()]:
        assert button.focusPolicy() & Qt.FocusPolicy.TabFocus, button.text()
        assert button.text() or button.accessibleName()


def dark_palette() -> QPalette:
    """A dark desktop palette, as a platform theme in dark mode hands it to Qt."""
    palette = QPalette()
    colours = {
        "Window": "#2b2b2b",
        "WindowText": "#e8e8e8",
        "Base": "#1e1e1e",
        "AlternateBase": "#262626",
        "Text": "#e8e8e8",
        "Button": "#353535",
        "ButtonText": "#e8e8e8",
        "Highlight": "#3d7fd1",
        "HighlightedText": "#ffffff",
        "Link": "#8ab4f8",
        "ToolTipBase": "#353535",
        "ToolTipText": "#e8e8e8",
        "PlaceholderText": "#9a9a9a",
    }
    for role, colour in colours.items():
        palette.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, "#7a7a7a")
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText, "#7a7a7a")
    return palette


def contrast(one: QColor, other: QColor) -> float:
    """WCAG 2 contrast ratio of two colours (4.5 is the minimum for text)."""

    def luminance(colour: QColor) -> float:
        def channel(value: float) -> float:
            return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

        red, green, blue = (channel(c) for c in (colour.redF(), colour.greenF(), colour.blueF()))
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    lighter, darker = sorted((luminance(one), luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_status_colours_read_well_on_the_light_and_the_dark_palette():
    for palette in (QApplication.style().standardPalette(), dark_palette()):
        background = palette.color(QPalette.ColorRole.Window)
        for tone in TONES:
            ratio = contrast(tone_colour(tone, palette), background)
            assert ratio >= 4.5, (tone, background.name(), round(ratio, 2))


def test_a_dark_system_palette_re_tints_the_whole_window(qtbot, window, screenshot):
    original = QApplication.palette()
    QApplication.setPalette(dark_palette())
    try:
        window.show_state(BUSY_WITH_ERRORS)
        screenshot(window, "12-dark-palette")
        assert TONES["error"][1] in window.sync.status.text()
        assert TONES["ok"][1] in window.redis.status.text()
        assert TONES["warn"][1] in window.demo_banner.styleSheet()
    finally:
        QApplication.setPalette(original)
    qtbot.waitUntil(lambda: TONES["error"][0] in window.sync.status.text())  # back to light


def test_the_first_window_size_fits_small_and_high_dpi_screens():
    assert fitting(DEFAULT_SIZE, QSize(1920, 1040)) == DEFAULT_SIZE
    assert fitting(DEFAULT_SIZE, QSize(1280, 720)) == QSize(1000, 648)  # 2560x1440 at 2x
    assert fitting(DEFAULT_SIZE, QSize(800, 600)) == QSize(720, 540)


def test_window_geometry_is_remembered(qtbot, window):
    window.resize(760, 560)
    window.close()  # no tray here: closing asks to quit and saves the geometry first
    again = MainWindow(window.controller)
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (760, 560)


def test_closing_with_a_tray_keeps_running_in_it(qtbot, window):
    window.tray_available = True
    with qtbot.waitSignal(window.controller.notified) as told:
        window.close()
    assert told.args[0] == "favdesk keeps running"
    assert not window.isVisible()
    assert not window.controller.quitting


def test_closing_without_a_tray_quits_at_once_when_nothing_runs(qtbot, window):
    window.show_state(READY)
    with qtbot.waitSignal(window.controller.quit_ready):
        window.close()


def test_a_minimised_window_counts_as_hidden_so_nothing_is_polled(qtbot, window):
    poller = window.controller.poller
    poller.update(ready=True)
    assert poller.plan.active, "shown and ready: it reads Redis"
    window.showMinimized()
    qtbot.waitUntil(lambda: not poller.plan.active)
    assert poller.plan.reason == "the window is hidden"
    window.showNormal()
    qtbot.waitUntil(lambda: poller.plan.active)
