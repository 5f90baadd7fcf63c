"""Storage: the selected user's files in the configured backend; open, save a copy, refresh."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from favdesk.gui.describe import clock, size
from favdesk.gui.panels.common import wrapped
from favdesk.gui.state import Dashboard

COLUMNS = ("Date", "Size", "Updated", "Key")


class StoragePanel(QWidget):
    open_clicked = Signal(str)
    #: key, file name
    save_clicked = Signal(str, str)
    refresh_clicked = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Storage")
        self.where = wrapped(accessible_name="Storage backend", parent=self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setAccessibleName("Files")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemActivated.connect(lambda _item: self._emit_open())
        self.open = QPushButton("&Open", self)
        self.save = QPushButton("Save a &copy...", self)
        self.refresh = QPushButton("Refresh &files", self)
        self.open.clicked.connect(self._emit_open)
        self.save.clicked.connect(self._emit_save)
        self.refresh.clicked.connect(self.refresh_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch()
        for button in (self.open, self.save, self.refresh):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.where)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self._files: tuple = ()
        self._selection_changed()

    def render(self, d: Dashboard) -> None:
        where = d.storage_description or "the configured storage"
        if d.files_error:
            self.where.setText(f"Could not list the files in {where}: {d.files_error}")
        elif d.user_id is None:
            self.where.setText(f"Files are kept in {where}. Link an account to see them.")
        else:
            count = len(d.files)
            self.where.setText(f"{count} file{'s' if count != 1 else ''} in {where}")
        self.refresh.setEnabled(d.ready and d.user_id is not None)
        if d.files != self._files:
            self._render_files(d.files)

    def _render_files(self, files: tuple) -> None:
        keep = self.selected_key()
        self._files = files
        self.table.setRowCount(len(files))
        for row, stored in enumerate(files):
            date = stored.name.removesuffix(".json")
            cells = (date, size(stored.size), clock(stored.updated_at), stored.key)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, row)
                self.table.setItem(row, column, item)
            if stored.key == keep:
                self.table.selectRow(row)
        self._selection_changed()

    def selected_file(self):
        rows = self.table.selectionModel().selectedRows()
        return self._files[rows[0].row()] if rows else None

    def selected_key(self) -> str | None:
        chosen = self.selected_file()
        return chosen.key if chosen is not None else None

    def _selection_changed(self) -> None:
        chosen = self.selected_file() is not None
        self.open.setEnabled(chosen)
        self.save.setEnabled(chosen)

    def _emit_open(self) -> None:
        chosen = self.selected_file()
        if chosen is not None:
            self.open_clicked.emit(chosen.key)

    def _emit_save(self) -> None:
        chosen = self.selected_file()
        if chosen is not None:
            self.save_clicked.emit(chosen.key, chosen.name)
