"""Redis: reachable or not, where, latency, version, and whether favdesk is sending it commands."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QPushButton, QVBoxLayout

from favdesk.gui.describe import clock, redis_view
from favdesk.gui.panels.common import Card, StatusLabel, wrapped
from favdesk.gui.state import Dashboard


class RedisPanel(Card):
    refresh_clicked = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__("Redis", parent)
        self.status = StatusLabel("Redis reachability", self)
        self.where = wrapped(accessible_name="Redis location", parent=self)
        self.latency = wrapped(accessible_name="Redis latency", parent=self)
        self.version = wrapped(accessible_name="Redis version", parent=self)
        self.activity = wrapped(accessible_name="Redis commands from favdesk", parent=self)
        self.read_at = wrapped(accessible_name="Last read", parent=self)
        self.refresh = QPushButton("Re&fresh", self)
        self.refresh.setToolTip("Read Redis once now (F5)")
        self.refresh.clicked.connect(self.refresh_clicked)
        form = QFormLayout()
        form.addRow("Where:", self.where)
        form.addRow("Latency:", self.latency)
        form.addRow("Version:", self.version)
        form.addRow("Commands:", self.activity)
        form.addRow("Last read:", self.read_at)
        row = QHBoxLayout()
        row.addStretch()
        row.addWidget(self.refresh)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addStretch()

    def render(self, d: Dashboard) -> None:
        view = redis_view(d)
        self.status.show_status(view.words, view.tone)
        self.where.setText(view.where)
        self.latency.setText(view.latency or "-")
        self.version.setText(view.version or "-")
        self.activity.setText(view.activity)
        taken = d.snapshot.taken_at if d.snapshot is not None else None
        self.read_at.setText(clock(taken) if taken else "not yet")
        self.refresh.setEnabled(d.ready)
