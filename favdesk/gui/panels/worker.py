"""Worker: the embedded worker's state, from its own callbacks, with Pause, Resume and Stop."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout

from favdesk.gui.describe import value, worker_view
from favdesk.gui.panels.common import Card, StatusLabel, wrapped
from favdesk.gui.state import Dashboard

RUNNING = ("idle", "busy", "waiting")


class WorkerPanel(Card):
    pause_clicked = Signal()
    resume_clicked = Signal()
    stop_clicked = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__("Worker", parent)
        self.status = StatusLabel("Worker state", self)
        self.detail = wrapped(accessible_name="Worker detail", parent=self)
        self.pause = QPushButton("&Pause", self)
        self.resume = QPushButton("&Resume", self)
        self.stop = QPushButton("S&top...", self)
        self.pause.setToolTip("Finish the current job, then take no new ones")
        self.stop.setToolTip(
            "Stop the worker: let the current job finish, or cancel it between pages"
        )
        self.pause.clicked.connect(self.pause_clicked)
        self.resume.clicked.connect(self.resume_clicked)
        self.stop.clicked.connect(self.stop_clicked)
        buttons = QHBoxLayout()
        for button in (self.pause, self.resume, self.stop):
            buttons.addWidget(button)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.detail)
        layout.addLayout(buttons)
        layout.addStretch()

    def render(self, d: Dashboard) -> None:
        state = value(d.worker)
        if not d.ready:
            self.status.show_status("Not started yet", "neutral")
        else:
            self.status.show_status(*worker_view(state))
        self.detail.setText(_detail(d, state))
        self.pause.setEnabled(d.ready and state in RUNNING)
        self.resume.setEnabled(d.ready and state in ("paused", "stopped"))
        self.resume.setText("S&tart" if state == "stopped" else "&Resume")
        self.stop.setEnabled(d.ready and state in (*RUNNING, "paused"))


def _detail(d: Dashboard, state: str) -> str:
    if state == "busy" and d.job is not None:
        return f"Importing for user {d.job.user_id} (job {d.job.job_id})."
    if state == "paused":
        return "A job that was running finishes; favdesk sends Redis nothing while paused."
    if state == "waiting" or d.wait_for_other_jobs:
        return "Also runs jobs other apps put in the queue (one blocking read at a time)."
    return "Runs the syncs you start here; sends Redis nothing while idle."
