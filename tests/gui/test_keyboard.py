"""Everything in the window is reachable from the keyboard: Tab in reading order, one Alt+letter
per visible control, and the menu shortcuts (Ctrl+R / F5 refresh, Ctrl+Q quit, Ctrl+, settings)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QApplication, QPushButton, QTabBar, QWidget
from rq.job import JobStatus

from favdesk.gui.settings_dialog import SettingsDialog
from favdesk.gui.state import Dashboard, LinkState, LiveJob
from favdesk.worker_events import WorkerState
from tests.gui import samples
from tests.gui.test_window_states import READY

#: States that show different sets of buttons; each is checked with each tab in front.
STATES = {
    "starting": Dashboard(),
    "start failed in demo mode": Dashboard(startup="failed", startup_error="x", demo_mode=True),
    "ready": replace(READY, notice="Saved a copy to /tmp/x.json"),
    "not linked, waiting for the browser": replace(
        READY, accounts=(), user_id=None, link=LinkState(waiting=True, url="http://127.0.0.1/")
    ),
    "link expired": replace(
        READY,
        accounts=(samples.account(needs_relink=True),),
        snapshot=samples.snapshot(sync="error", reason="reauth"),
    ),
    "settings error": replace(READY, snapshot=samples.snapshot(sync="error", reason="settings")),
    "failed job": replace(
        READY,
        snapshot=samples.snapshot(
            sync="error", jobs=[samples.job(state=JobStatus.FAILED, error="boom")]
        ),
    ),
    "queued behind a paused worker": replace(
        READY, worker=WorkerState.PAUSED, queued_job="ingest-x"
    ),
    "queued behind a stopped worker": replace(
        READY, worker=WorkerState.STOPPED, queued_job="ingest-x"
    ),
    "syncing": replace(READY, worker=WorkerState.BUSY, job=LiveJob("j", "demo-listener", 5, 10)),
}


def mnemonic(text: str) -> str | None:
    """The letter after a single "&" (Alt+letter), or None ("&&" is a literal ampersand)."""
    index = 0
    while (index := text.find("&", index)) != -1 and index + 1 < len(text):
        if text[index + 1] != "&":
            return text[index + 1].lower()
        index += 2
    return None


def visible_mnemonics(root: QWidget) -> list[tuple[str, str]]:
    """(letter, label) of every Alt+letter a person can press now: buttons, tabs, menus."""
    texts = [b.text() for b in root.findChildren(QAbstractButton) if b.isVisible()]
    for bar in root.findChildren(QTabBar):
        if bar.isVisible():
            texts += [bar.tabText(i) for i in range(bar.count())]
    menu_bar = getattr(root, "menuBar", None)
    if menu_bar is not None:
        texts += [action.text() for action in menu_bar().actions()]
    return [(letter, text) for text in texts if (letter := mnemonic(text))]


def clashes(found: list[tuple[str, str]]) -> list[list[str]]:
    counts = Counter(letter for letter, _ in found)
    return [
        [text for letter, text in found if letter == twice] for twice in counts if counts[twice] > 1
    ]


@pytest.mark.parametrize("name", list(STATES))
def test_no_two_visible_controls_share_an_alt_letter(window, name):
    for tab in range(window.tabs.count()):
        window.show_state(STATES[name])
        window.tabs.setCurrentIndex(tab)
        found = visible_mnemonics(window)
        assert clashes(found) == [], f"{name}, tab {window.tabs.tabText(tab)}"
    assert len(found) >= 6, "the main controls have Alt+letters"


def test_every_visible_button_has_an_alt_letter_or_a_shortcut(window):
    window.show_state(READY)
    for tab in range(window.tabs.count()):
        window.tabs.setCurrentIndex(tab)
        for button in [b for b in window.findChildren(QPushButton) if b.isVisible()]:
            assert mnemonic(button.text()) or "(Ctrl+" in button.toolTip(), button.text()


def test_the_settings_dialog_has_no_clashing_alt_letters(qtbot, settings):
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    labels = [
        (letter, label.text())
        for label in dialog.findChildren(QWidget)
        if hasattr(label, "buddy") and label.buddy() and (letter := mnemonic(label.text()))
    ]
    assert clashes(visible_mnemonics(dialog) + labels) == []


def focus_chain(window, first: str, presses: int = 30) -> list[str]:
    """What Tab visits until it comes round again, starting from the control named `first`."""
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)
    if QApplication.focusWidget() is None:
        window.focusNextChild()
    seen: list[QWidget] = []
    while QApplication.focusWidget() not in seen and len(seen) < presses:
        seen.append(QApplication.focusWidget())
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    names = [_name(w) for w in seen]
    start = names.index(first)
    return names[start:] + names[:start]


def _name(widget: QWidget) -> str:
    text = getattr(widget, "text", None)
    return widget.accessibleName() or (text() if callable(text) else "")


def test_tab_follows_the_reading_order_and_leaves_the_tables(window):
    window.show_state(READY)
    window.tabs.tabBar().setAccessibleName("Sections")
    assert focus_chain(window, "S&ettings...") == [
        "S&ettings...",  # the demo banner at the top
        "Linked accounts",
        "&Link Spotify",
        "&Sync now",
        "&Pause",
        "S&top...",
        "Pause the queue",
        "Refresh",
        "Sections",
        "Recent jobs",
        "Workers on this Redis",
    ]


def test_tab_moves_through_the_log_and_out_of_it(window):
    window.show_state(READY)
    window.tabs.setCurrentWidget(window.log)
    window.log.append("[spotify-ingest] page 1 of 3")
    chain = focus_chain(window, "S&ettings...")
    assert chain[-2:] == ["Worker log lines", "Copy to clip&board"]


def test_alt_letters_press_buttons_and_switch_tabs(qtbot, window):
    window.show_state(READY)
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)
    with qtbot.waitSignal(window.worker.pause_clicked):
        QTest.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.AltModifier)
    QTest.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.AltModifier)
    assert window.tabs.currentWidget() is window.storage
    QTest.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.AltModifier)
    assert window.tabs.currentWidget() is window.log


@pytest.mark.parametrize("keys", ["Ctrl+R", "F5"])
def test_refresh_shortcuts(qtbot, window, keys):
    window.show_state(READY)
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)
    with qtbot.waitSignal(window.refresh_action.triggered):
        QTest.keySequence(window, keys)


def test_ctrl_q_quits_and_ctrl_comma_opens_settings(qtbot, window):
    window.show_state(READY)
    window.activateWindow()
    assert QTest.qWaitForWindowActive(window)
    with qtbot.waitSignal(window.settings_requested):
        QTest.keySequence(window, "Ctrl+,")
    with qtbot.waitSignal(window.controller.quit_ready):
        QTest.keySequence(window, "Ctrl+Q")
