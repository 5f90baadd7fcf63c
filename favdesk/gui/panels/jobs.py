"""Queue: depth by state and the recent jobs, with Retry and Delete for failed ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QTableWidgetItem, QWidget

from favdesk.gui.describe import clock, duration, number
from favdesk.gui.panels.common import button, plain_tip, row, rows_table, selectable, stack
from favdesk.gui.state import Dashboard

if TYPE_CHECKING:
    from favdesk.queue_status import JobInfo

STATES = ("queued", "started", "finished", "failed", "deferred", "scheduled")
COLUMNS = ("Job", "User", "State", "When", "Duration", "Songs", "Error")
HINT = "Failed jobs can be retried or deleted."


class QueuePanel(QWidget):
    retry_clicked = Signal(str)
    delete_clicked = Signal(str)

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
        hint = selectable(QLabel(HINT, self))
        hint.setAccessibleName("Failed jobs hint")
        counts = row(*self.counts.values(), None)
        stack(self, counts, self.table, row(hint, None, self.retry, self.delete))
        self._failed: set[str] = set()
        self._shown: object | None = None
        self._selection_changed()

    def show_state(self, d: Dashboard) -> None:
        snapshot = d.snapshot
        if snapshot is self._shown and self.table.rowCount():
            return  # unchanged: progress updates re-render often during an import
        self._shown = snapshot
        counts = snapshot.counts if snapshot is not None else {}
        for state, label in self.counts.items():
            label.setText(f"{state.capitalize()}: {number(counts.get(state)) if counts else '-'}")
        self._render_jobs(list(snapshot.jobs) if snapshot is not None else [])

    def _render_jobs(self, jobs: list[JobInfo]) -> None:
        keep = self.selected_job()
        self._failed = _failed_ids(jobs)
        self.table.setRowCount(len(jobs))
        for row_number, job in enumerate(jobs):
            for column, text in enumerate(_cells(job)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, job.id)
                item.setToolTip(plain_tip(text))
                self.table.setItem(row_number, column, item)
            if job.id == keep:
                self.table.selectRow(row_number)
        self._selection_changed()

    def selected_job(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _job(self) -> str:
        return self.selected_job() or ""

    def _selection_changed(self) -> None:
        failed = self.selected_job() in self._failed
        self.retry.setEnabled(failed)
        self.delete.setEnabled(failed)


def _failed_ids(jobs: list[JobInfo]) -> set[str]:
    if not jobs:
        return set()
    from rq.job import JobStatus  # loaded by the runtime that read the jobs

    return {job.id for job in jobs if job.state == JobStatus.FAILED}


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
