"""Worker: the embedded worker's state, from its own callbacks, with Pause, Resume and Stop;
and the queue's pause for every favdesk worker, with Pause the queue / Resume the queue."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from favdesk.gui.describe import QUEUE_TIP, queue_view, worker_view
from favdesk.gui.panels.common import Card, StatusLabel, button, row, stack, wrapped
from favdesk.gui.state import Dashboard
from favdesk.worker_events import WorkerState

RUNNING = (WorkerState.IDLE, WorkerState.BUSY, WorkerState.WAITING, WorkerState.QUEUE_PAUSED)
RESUMABLE = (WorkerState.PAUSED, WorkerState.STOPPED)
#: Pause the queue / Resume the queue has no Alt+letter left (every one is taken): this instead.
QUEUE_SHORTCUT = "Ctrl+Shift+P"
STOP_TIP = (
    "Stop the worker. With a sync running you choose: let it finish, or cancel it between "
    "pages (the pages fetched so far are kept and the next sync resumes from there)."
)


class WorkerPanel(Card):
    pause_clicked = Signal()
    resume_clicked = Signal()
    stop_clicked = Signal()
    queue_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Worker", parent)
        self.status = StatusLabel("Worker state", self)
        self.detail = wrapped(accessible_name="Worker detail", parent=self)
        tip = "Let a running sync finish, then start no new ones until you resume"
        self.pause = button("&Pause", self, self.pause_clicked, tip)
        self.resume = button("&Resume", self, self.resume_clicked)
        self.stop = button("S&top...", self, self.stop_clicked, STOP_TIP)
        buttons = row(self.pause, self.resume, self.stop, None)
        self.queue_status = StatusLabel("Queue pause", self)
        self.queue_note = wrapped(accessible_name="Workers the queue pause misses", parent=self)
        tip = f"{QUEUE_TIP} ({QUEUE_SHORTCUT})"
        self.queue = button("Pause the queue", self, self.queue_clicked, tip)
        queue = row(self.queue, None)
        stack(
            self, self.status, self.detail, buttons, self.queue_status, self.queue_note, queue, None
        )

    def show_state(self, d: Dashboard) -> None:
        state = d.worker
        if not d.ready:
            self.status.show_status("Not started yet", "neutral")
        else:
            self.status.show_status(*worker_view(d))
        self.detail.setText(_detail(d, state))
        self.pause.setEnabled(d.ready and state in RUNNING)
        self.resume.setEnabled(d.ready and state in RESUMABLE)
        self.resume.setText("Sta&rt" if state == WorkerState.STOPPED else "&Resume")
        self.stop.setEnabled(d.ready and state in (*RUNNING, WorkerState.PAUSED))
        view = queue_view(d)
        self.queue_status.show_status(view.words, view.tone)
        self.queue_note.setText(view.note)
        self.queue_note.setVisible(bool(view.note))
        self.queue.setText(view.button)
        self.queue.setEnabled(d.ready and "queue" not in d.pending)


def _detail(d: Dashboard, state: WorkerState) -> str:
    if state == WorkerState.STOPPING and d.stopping == "cancel":
        return "The pages fetched so far are kept; the next sync resumes from there."
    if state == WorkerState.BUSY and d.job is not None:
        return f"Importing for user {d.job.user_id} (job {d.job.job_id})."
    if state == WorkerState.PAUSED:
        return "A job that was running finishes; favdesk sends Redis nothing while paused."
    if state == WorkerState.QUEUE_PAUSED:
        return "It takes jobs again when the queue resumes, from here or from any favdesk."
    if state == WorkerState.WAITING or d.wait_for_other_jobs:
        return "Also runs jobs other apps put in the queue (one blocking read at a time)."
    return "Runs the syncs you start here; sends Redis nothing while idle."
