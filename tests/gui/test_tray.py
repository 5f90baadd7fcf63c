"""The tray: menu labels and icon follow the state, built even where no system tray exists."""

from __future__ import annotations

from dataclasses import replace

from favdesk.gui.state import Dashboard, LiveJob
from favdesk.gui.tray import Tray, menu_entries
from favdesk.worker_events import WorkerState
from tests.gui import samples

READY = Dashboard(
    startup="ready", accounts=(samples.account(),), user_id="demo-listener", worker=WorkerState.IDLE
)


def labels(d: Dashboard) -> list[str]:
    return [entry.label for entry in menu_entries(d)]


def test_menu_has_status_sync_toggle_open_quit():
    assert labels(READY) == ["Idle, last sync never", "Sync now", "Pause", "Open dashboard", "Quit"]


def test_pause_item_label_follows_the_worker():
    assert labels(replace(READY, worker=WorkerState.PAUSED))[2] == "Resume"
    assert labels(replace(READY, worker=WorkerState.STOPPED))[2] == "Start worker"
    assert labels(replace(READY, worker=WorkerState.BUSY))[2] == "Pause"
    stopping = menu_entries(replace(READY, worker=WorkerState.STOPPING))[2]
    assert (stopping.label, stopping.enabled) == ("Pause", False)


def test_status_line_shows_progress_and_sync_is_off_while_running():
    d = replace(
        READY, worker=WorkerState.BUSY, job=LiveJob("j", "demo-listener", 1_500, 10_000, "fetching")
    )
    entries = menu_entries(d)
    assert entries[0].label == "Syncing: 1,500 / 10,000 songs"
    assert not entries[0].enabled
    assert not entries[1].enabled


def test_menu_is_rebuilt_from_the_latest_state_when_it_opens(qtbot):
    tray = Tray()
    tray.show_state(replace(READY, worker=WorkerState.PAUSED))
    tray.menu.aboutToShow.emit()
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
    assert texts == ["Paused", "Sync now", "Resume", "Open dashboard", "Quit"]
    assert tray.icon.toolTip() == "favdesk: Paused"
    tray.close()


def test_toggle_item_pauses_or_resumes_by_state(qtbot):
    tray = Tray()
    tray.show_state(READY)
    with qtbot.waitSignal(tray.pause_requested):
        tray.choose("toggle")
    tray.show_state(replace(READY, worker=WorkerState.PAUSED))
    tray.rebuild()
    toggle = next(a for a in tray.menu.actions() if a.data() == "toggle")
    with qtbot.waitSignal(tray.resume_requested):
        toggle.trigger()
    tray.close()


def test_no_system_tray_offscreen_so_the_icon_is_not_shown(qtbot):
    tray = Tray()
    assert tray.show() is False
    assert not tray.icon.isVisible()
    tray.close()


def test_an_expired_link_offers_link_again_instead_of_sync_now(qtbot):
    expired = replace(READY, accounts=(samples.account(needs_relink=True),))
    entry = menu_entries(expired)[1]
    assert (entry.key, entry.label, entry.enabled) == ("link", "Link Spotify again...", True)
    tray = Tray()
    tray.show_state(expired)
    with qtbot.waitSignal(tray.link_requested):
        tray.choose("link")
    tray.close()
