"""Redis: reachable or not, where, latency, version, and whether favdesk is sending it commands."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QWidget

from favdesk.gui.describe import clock, redis_view
from favdesk.gui.panels.common import Card, StatusLabel, button, row, stack, wrapped
from favdesk.gui.state import Dashboard


class RedisPanel(Card):
    refresh_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Redis", parent)
        self.status = StatusLabel("Redis reachability", self)
        self.where = wrapped(accessible_name="Redis location", parent=self)
        self.latency = wrapped(accessible_name="Redis latency", parent=self)
        self.version = wrapped(accessible_name="Redis version", parent=self)
        self.activity = wrapped(accessible_name="Redis commands from favdesk", parent=self)
        self.read_at = wrapped(accessible_name="Last read", parent=self)
        tip = "Read Redis once now, even while paused (Ctrl+R or F5)"
        self.refresh = button("Refresh", self, self.refresh_clicked, tip)
        form = QFormLayout()
        form.addRow("Where:", self.where)
        form.addRow("Latency:", self.latency)
        form.addRow("Version:", self.version)
        form.addRow("Commands:", self.activity)
        form.addRow("Last read:", self.read_at)
        stack(self, self.status, form, row(None, self.refresh), None)

    def show_state(self, d: Dashboard) -> None:
        view = redis_view(d)
        self.status.show_status(view.words, view.tone)
        self.where.setText(view.where)
        self.latency.setText(view.latency or "-")
        self.version.setText(view.version or "-")
        self.activity.setText(view.activity)
        taken = d.snapshot.taken_at if d.snapshot is not None else None
        self.read_at.setText(clock(taken) if taken else "not yet")
        self.refresh.setEnabled(d.ready)
