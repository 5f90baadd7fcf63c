"""Storage: the selected user's files in the configured backend; open, save a copy, refresh."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QTableWidgetItem, QWidget

from favdesk.gui.describe import clock, size
from favdesk.gui.panels.common import button, row, rows_table, stack, wrapped
from favdesk.gui.state import Dashboard

if TYPE_CHECKING:
    from favdesk.storage import StoredFile

COLUMNS = ("Date", "Size", "Updated", "Key")


class StoragePanel(QWidget):
    open_clicked = Signal(str)
    #: key, file name
    save_clicked = Signal(str, str)
    refresh_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Storage")
        self.where = wrapped(accessible_name="Storage backend", parent=self)
        self.table = rows_table(COLUMNS, "Files", self)
        self.table.setAccessibleDescription("Enter opens the selected file")
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemActivated.connect(lambda _item: self._emit_open())
        tip = "Download the file to a private folder and open it with your JSON viewer"
        self.open = button("Ope&n", self, self._emit_open, tip)
        self.save = button("Sa&ve a copy...", self, self._emit_save)
        tip = "List the files again (Ctrl+R refreshes everything)"
        self.refresh = button("Refresh files", self, self.refresh_clicked, tip)
        stack(self, self.where, self.table, row(None, self.open, self.save, self.refresh))
        self._files: tuple[StoredFile, ...] = ()
        self._selection_changed()

    def show_state(self, d: Dashboard) -> None:
        where = d.storage_description or "the configured storage"
        if d.files_error:
            self.where.setText(f"Could not list the files in {where}: {d.files_error}")
        elif d.user_id is None:
            self.where.setText(f"Files are kept in {where}. Link an account to see them.")
        else:
            count = len(d.files)
            self.where.setText(f"{count} file{'s' if count != 1 else ''} in {where}")
        self.refresh.setEnabled(d.ready and d.user_id is not None and "files" not in d.pending)
        if d.files != self._files:
            self._render_files(d.files)

    def _render_files(self, files: tuple[StoredFile, ...]) -> None:
        keep = self.selected_key()
        self._files = files
        self.table.setRowCount(len(files))
        for row_number, stored in enumerate(files):
            date = stored.name.removesuffix(".json")
            cells = (date, size(stored.size), clock(stored.updated_at), stored.key)
            for column, text in enumerate(cells):
                self.table.setItem(row_number, column, QTableWidgetItem(text))
            if stored.key == keep:
                self.table.selectRow(row_number)
        self._selection_changed()

    def selected_file(self) -> StoredFile | None:
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
