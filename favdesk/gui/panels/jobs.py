"""Queue: depth by state and the recent jobs, with Retry and Delete for failed ones and Cancel
for running ones; below, every worker on this Redis (`workers.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QWidget

from favdesk.gui.describe import clock, duration, number
from favdesk.gui.panels.common import (
    button,
    fill_rows,
    row,
    rows_table,
    selectable,
    selected_key,
    stack,
)
from favdesk.gui.panels.workers import WorkersPanel
from favdesk.gui.state import Dashboard

if TYPE_CHECKING:
    from favdesk.queue_status import JobInfo

STATES = ("queued", "started", "finished", "failed", "deferred", "scheduled")
COLUMNS = ("Job", "User", "State", "When", "Duration", "Songs", "Error")
HINT = "Failed jobs can be retried or deleted; running ones cancelled between pages."
CANCEL_TIP = (
    "Ask the worker running it, here or on another machine, to stop after the page it is "
    "fetching; its pages are kept and the next sync resumes from there"
)


class QueuePanel(QWidget):
    retry_clicked = Signal(str)
    delete_clicked = Signal(str)
    cancel_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Queue")
        self.counts = {state: selectable(QLabel(self)) for state in STATES}
        for state, label in self.counts.items():
            label.setAccessibleName(f"{state} jobs")
        self.table = rows_table(COLUMNS, "Recent jobs", self)
        self.table.setAccessibleDescription(HINT)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.retry = button("Retry &job", self, lambda: self.retry_clicked.emit(self._job()))
        self.delete = button("&Delete job", self, lambda: self.delete_clicked.emit(self._job()))
        self.cancel = button(
            "Cancel running jo&b", self, lambda: self.cancel_clicked.emit(self._job()), CANCEL_TIP
        )
        self.workers = WorkersPanel(self)
        hint = selectable(QLabel(HINT, self))
        hint.setAccessibleName("Failed jobs hint")
        counts = row(*self.counts.values(), None)
        buttons = row(hint, None, self.cancel, self.retry, self.delete)
        stack(self, counts, self.table, buttons, self.workers)
        self._failed: set[str] = set()
        self._running: set[str] = set()
        self._shown: object | None = None
        self._selection_changed()

    def show_state(self, d: Dashboard) -> None:
        self.workers.show_state(d)
        snapshot = d.snapshot
        if snapshot is self._shown and self.table.rowCount():
            return  # unchanged: progress updates re-render often during an import
        self._shown = snapshot
        counts = snapshot.counts if snapshot is not None else {}
        for state, label in self.counts.items():
            label.setText(f"{state.capitalize()}: {number(counts.get(state)) if counts else '-'}")
        self._render_jobs(list(snapshot.jobs) if snapshot is not None else [])

    def _render_jobs(self, jobs: list[JobInfo]) -> None:
        self._failed = _ids_in(jobs, "failed")
        self._running = _ids_in(jobs, "started")
        fill_rows(self.table, [(job.id, _cells(job)) for job in jobs])
        self._selection_changed()

    def selected_job(self) -> str | None:
        return selected_key(self.table)

    def _job(self) -> str:
        return self.selected_job() or ""

    def _selection_changed(self) -> None:
        failed = self.selected_job() in self._failed
        self.retry.setEnabled(failed)
        self.delete.setEnabled(failed)
        self.cancel.setEnabled(self.selected_job() in self._running)


def _ids_in(jobs: list[JobInfo], state: str) -> set[str]:
    if not jobs:
        return set()
    from rq.job import JobStatus  # loaded by the runtime that read the jobs

    return {job.id for job in jobs if job.state == JobStatus(state)}


def _cells(job: JobInfo) -> tuple[str, ...]:
    when = job.ended_at or job.started_at or job.enqueued_at
    tracks = "" if job.tracks is None else number(job.tracks)
    return (
        job.id,
        job.user_id or "",
        job.state.value,
        clock(when) if when else "",
        duration(job.duration),
        tracks,
        job.error or "",
    )
