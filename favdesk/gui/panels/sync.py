"""Sync: the user's sync status in words and colour, its remedy, progress and last success."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QWidget

from favdesk.gui.describe import SyncView, sync_view
from favdesk.gui.panels.common import (
    Card,
    StatusLabel,
    button,
    row,
    selectable,
    stack,
    wrapped,
)
from favdesk.gui.state import Dashboard
from favdesk.progress import amount, bar_values, counts_bytes

#: The button that carries out a remedy (its mnemonics differ from every other button's).
ACTION_LABELS = {
    "link": "Lin&k Spotify",
    "relink": "Lin&k again",
    "settings": "Open Sett&ings...",
    "sync": "S&ync again",
    "resume": "Resume &worker",
    "start": "Start &worker",
}


class SyncPanel(Card):
    #: one of ACTION_LABELS' keys
    action_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Sync", parent)
        self.status = StatusLabel("Sync status", self)
        self.remedy = wrapped(accessible_name="What to do", parent=self)
        self.detail = wrapped(accessible_name="What went wrong", parent=self)
        self.progress = QProgressBar(self)
        self.progress.setAccessibleName("Sync progress")
        self.last = selectable(QLabel(self))
        self.last.setAccessibleName("Last successful sync")
        self._action = ""
        self.action = button("", self, lambda: self.action_clicked.emit(self._action))
        bottom = row(self.last, None, self.action)
        stack(self, self.status, self.progress, self.detail, self.remedy, bottom, None)

    def show_state(self, d: Dashboard) -> None:
        view = sync_view(d)
        self.status.show_status(view.words, view.tone)
        self.remedy.setText(view.remedy or "")
        self.remedy.setVisible(bool(view.remedy))
        self.detail.setText(f"Details: {view.detail}" if view.detail else "")
        self.detail.setVisible(bool(view.detail))
        self._render_progress(view)
        self.last.setText(f"Last successful sync: {view.last_success}")
        self._action = view.action or ""
        self.action.setVisible(bool(view.action) and d.ready)
        self.action.setText(ACTION_LABELS.get(self._action, ""))

    def _render_progress(self, view: SyncView) -> None:
        self.progress.setVisible(view.active)
        text = amount(view.phase, view.fetched, view.total)
        if view.total is None:
            self.progress.setRange(0, 0)  # busy indicator until the first page gives the total
        else:
            value, maximum = bar_values(view.phase, view.fetched, view.total)
            self.progress.setRange(0, maximum)
            self.progress.setValue(value)
        self.progress.setFormat(text)
        done = "uploaded" if counts_bytes(view.phase) else "fetched"
        self.progress.setAccessibleDescription(f"{text} {done}")
