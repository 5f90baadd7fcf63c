"""Queue: depth by state and the recent jobs, with Retry and Delete for failed ones."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from favdesk.gui.describe import clock, duration, number, value
from favdesk.gui.state import Dashboard

STATES = ("queued", "started", "finished", "failed", "deferred", "scheduled")
COLUMNS = ("Job", "User", "State", "When", "Duration", "Songs", "Error")


class QueuePanel(QWidget):
    retry_clicked = Signal(str)
    delete_clicked = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Queue")
        self.counts = {state: QLabel(self) for state in STATES}
        counts = QHBoxLayout()
        for state, label in self.counts.items():
            label.setAccessibleName(f"{state} jobs")
            counts.addWidget(label)
        counts.addStretch()
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setAccessibleName("Recent jobs")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.retry = QPushButton("Re&try job", self)
        self.delete = QPushButton("&Delete job", self)
        self.retry.clicked.connect(lambda: self.retry_clicked.emit(self.selected_job() or ""))
        self.delete.clicked.connect(lambda: self.delete_clicked.emit(self.selected_job() or ""))
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Failed jobs can be retried or deleted.", self), 1)
        buttons.addWidget(self.retry)
        buttons.addWidget(self.delete)
        layout = QVBoxLayout(self)
        layout.addLayout(counts)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
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
        for row, job in enumerate(jobs):
            for column, text in enumerate(_cells(job)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, job.id)
                item.setToolTip(text)
                self.table.setItem(row, column, item)
            if job.id == keep:
                self.table.selectRow(row)
        self._selection_changed()

    def selected_job(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)

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
