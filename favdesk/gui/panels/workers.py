"""Workers: every worker on this Redis (favdesk's and stock RQ's), with Stop and Clean up.

Read only while the Queue tab, which holds this, is in front of a visible window.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QWidget

from favdesk.gui.describe import WORKER_COLUMNS, clock, worker_cells
from favdesk.gui.panels.common import (
    button,
    fill_rows,
    row,
    rows_table,
    selectable,
    selected_key,
    stack,
)
from favdesk.gui.state import Dashboard

STOP_TIP = (
    "RQ's shutdown command: the worker finishes its current job, then stops (a favdesk worker "
    "on another machine too)"
)
CLEAN_TIP = "Remove the registrations of workers whose heartbeat expired (their process is gone)"


class WorkersPanel(QWidget):
    stop_clicked = Signal(str)
    clean_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Workers")
        self.summary = selectable(QLabel(self))
        self.summary.setAccessibleName("Workers summary")
        self.table = rows_table(WORKER_COLUMNS, "Workers on this Redis", self)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.stop = button("Shut dow&n worker", self, self._emit_stop, STOP_TIP)
        self.clean = button("Clean up e&xpired", self, self.clean_clicked, CLEAN_TIP)
        heading = selectable(QLabel("Workers on this Redis (favdesk's and stock RQ's):", self))
        heading.setAccessibleName("Workers heading")
        layout = stack(self, heading, self.table, row(self.summary, None, self.stop, self.clean))
        layout.setContentsMargins(0, 0, 0, 0)
        self._expired: set[str] = set()
        self._shown: object | None = None
        self._selection_changed()

    def show_state(self, d: Dashboard) -> None:
        fleet = d.fleet
        self.clean.setEnabled(bool(fleet and fleet.expired))
        if fleet is self._shown and fleet is not None:
            return
        self._shown = fleet
        if fleet is None:
            self.summary.setText(d.fleet_error or "Not read yet: shown while this tab is open")
            self.table.setRowCount(0)
            self._selection_changed()
            return
        self._expired = {w.name for w in fleet.expired}
        fill_rows(self.table, [(w.name, worker_cells(w, d.worker_name)) for w in fleet.workers])
        favdesk = sum(w.favdesk for w in fleet.workers if not w.expired)
        stock = sum(not w.favdesk for w in fleet.workers if not w.expired)
        self.summary.setText(
            f"{favdesk} favdesk, {stock} stock RQ, {len(self._expired)} expired "
            f"(read at {clock(fleet.taken_at)})"
        )
        self._selection_changed()

    def selected_worker(self) -> str | None:
        return selected_key(self.table)

    def _emit_stop(self) -> None:
        name = self.selected_worker()
        if name:
            self.stop_clicked.emit(name)

    def _selection_changed(self) -> None:
        name = self.selected_worker()
        self.stop.setEnabled(name is not None and name not in self._expired)
