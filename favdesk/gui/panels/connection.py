"""Redis: reachable or not, where, latency, version, whether favdesk is sending it commands, and
how many: the meter counted in the client, a sparkline of the last hour and the month ahead."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFormLayout, QWidget

from favdesk.gui.describe import clock, meter_view, redis_view
from favdesk.gui.panels.common import Card, StatusLabel, button, row, stack, wrapped
from favdesk.gui.panels.sparkline import Sparkline
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
        self.sent = wrapped(accessible_name="Commands favdesk sent", parent=self)
        self.sparkline = Sparkline(self)
        self.month = StatusLabel("Commands a month at this rate", self)
        self.server = wrapped(accessible_name="Commands Redis counted", parent=self)
        tip = (
            "Read Redis once now, even while paused, with Redis's own command count "
            "(one INFO more) (Ctrl+R or F5)"
        )
        self.refresh = button("Refresh", self, self.refresh_clicked, tip)
        form = QFormLayout()
        form.addRow("Where:", self.where)
        form.addRow("Latency:", self.latency)
        form.addRow("Version:", self.version)
        form.addRow("Commands:", self.activity)
        form.addRow("Sent:", self.sent)
        form.addRow("Per minute:", self.sparkline)
        form.addRow("A month:", self.month)
        form.addRow("Redis counts:", self.server)
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
        meter = meter_view(d)
        self.sent.setText(meter.words)
        self.sparkline.set_values(meter.per_minute)
        self.month.show_status(meter.month or "-", meter.tone)
        self.server.setText(meter.server)
        self.refresh.setEnabled(d.ready)
