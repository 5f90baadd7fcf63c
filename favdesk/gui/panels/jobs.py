"""Queue: depth by state and the recent jobs, with Retry and Delete for failed ones."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QTableWidgetItem, QWidget

from favdesk.gui.describe import clock, duration, number, value
from favdesk.gui.panels.common import button, row, rows_table, selectable, stack
from favdesk.gui.state import Dashboard

STATES = ("queued", "started", "finished", "failed", "deferred", "scheduled")
COLUMNS = ("Job", "User", "State", "When", "Duration", "Songs", "Error")
HINT = "Failed jobs can be retried or deleted."


class QueuePanel(QWidget):
    retry_clicked = Signal(str)
    delete_clicked = Signal(str)

    def __init__(self, parent=None) -> None:
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

    def render(self, d: Dashboard) -> None:
        snapshot = d.snapshot
        if snapshot is self._shown and self.table.rowCount():
            return  # unchanged: progress updates re-render often during an import
        self._shown = snapshot
        counts = snapshot.counts if snapshot is not None else {}
        for state, label in self.counts.items():
            label.setText(f"{state.capitalize()}: {number(counts.get(state)) if counts else '-'}")
        self._render_jobs(list(snapshot.jobs) if snapshot is not None else [])

    def _render_jobs(self, jobs: list) -> None:
        keep = self.selected_job()
        self._failed = {job.id for job in jobs if value(job.state) == "failed"}
        self.table.setRowCount(len(jobs))
        for row_number, job in enumerate(jobs):
            for column, text in enumerate(_cells(job)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, job.id)
                item.setToolTip(text)
                self.table.setItem(row_number, column, item)
            if job.id == keep:
                self.table.selectRow(row_number)
        self._selection_changed()

    def selected_job(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)

    def _job(self) -> str:
        return self.selected_job() or ""

    def _selection_changed(self) -> None:
        failed = self.selected_job() in self._failed
        self.retry.setEnabled(failed)
        self.delete.setEnabled(failed)


def _cells(job) -> tuple[str, ...]:
    when = job.ended_at or job.started_at or job.enqueued_at
    tracks = "" if job.tracks is None else number(job.tracks)
    return (
        job.id,
        job.user_id or "",
        value(job.state),
        clock(when) if when else "",
        duration(job.duration),
        tracks,
        job.error or "",
    )
