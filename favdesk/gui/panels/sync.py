"""Sync: the user's sync status in words and colour, its remedy, progress and last success."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout

from favdesk.gui.describe import number, sync_view
from favdesk.gui.panels.common import Card, StatusLabel, wrapped
from favdesk.gui.state import Dashboard

#: The button that carries out a remedy.
ACTION_LABELS = {
    "link": "&Link Spotify",
    "settings": "Open Se&ttings...",
    "sync": "Sync &again",
    "resume": "&Resume worker",
    "start": "S&tart worker",
}


class SyncPanel(Card):
    #: one of ACTION_LABELS' keys
    action_clicked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__("Sync", parent)
        self.status = StatusLabel("Sync status", self)
        self.remedy = wrapped(accessible_name="What to do", parent=self)
        self.detail = wrapped(accessible_name="What went wrong", parent=self)
        self.progress = QProgressBar(self)
        self.progress.setAccessibleName("Sync progress")
        self.last = QLabel(self)
        self.last.setAccessibleName("Last successful sync")
        self.action = QPushButton(self)
        self.action.clicked.connect(lambda: self.action_clicked.emit(self._action))
        self._action = ""
        row = QHBoxLayout()
        row.addWidget(self.last, 1)
        row.addWidget(self.action)
        layout = QVBoxLayout(self)
        for widget in (self.status, self.progress, self.detail, self.remedy):
            layout.addWidget(widget)
        layout.addLayout(row)
        layout.addStretch()

    def render(self, d: Dashboard) -> None:
        view = sync_view(d)
        self.status.show_status(view.words, view.tone)
        self.remedy.setText(view.remedy or "")
        self.remedy.setVisible(bool(view.remedy))
        self.detail.setText(f"Details: {view.detail}" if view.detail else "")
        self.detail.setVisible(bool(view.detail))
        self._render_progress(view.active, view.fetched, view.total)
        self.last.setText(f"Last successful sync: {view.last_success}")
        self._action = view.action or ""
        self.action.setVisible(bool(view.action) and d.ready)
        self.action.setText(ACTION_LABELS.get(self._action, ""))

    def _render_progress(self, active: bool, fetched: int, total: int | None) -> None:
        self.progress.setVisible(active)
        if total is None:
            self.progress.setRange(0, 0)  # busy indicator until the first page gives the total
            self.progress.setFormat(f"{number(fetched)} songs")
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(fetched, max(total, 1)))
        self.progress.setFormat(f"{number(fetched)} / {number(total)} songs")
