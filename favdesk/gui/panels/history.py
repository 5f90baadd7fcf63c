"""History: every snapshot with its songs, size and change, the library's size over time, what
changed between two snapshots, CSV export and retention."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractItemView, QTableWidgetItem, QWidget

from favdesk.gui.describe import size
from favdesk.gui.panels.common import button, plain_tip, row, rows_table, stack, wrapped
from favdesk.gui.panels.size_chart import SizeChart
from favdesk.gui.state import Dashboard
from favdesk.snapshot import TrackKind

if TYPE_CHECKING:
    from favdesk.diff import SnapshotDiff
    from favdesk.history import History, Snapshot
    from favdesk.snapshot import Track

COLUMNS = ("Date", "Songs", "Size", "Change")
CHANGE_COLUMNS = ("", "Song", "Artists", "Album", "Added")
#: The change table shows at most this many songs (the CLI and the CSV have them all).
MAX_CHANGE_ROWS = 2000
HINT = "Select one snapshot to see what changed since the one before it, or two to compare them."
PRUNE_OFF = "Retention is off: set Keep snapshots in Settings to delete old snapshots."


class HistoryPanel(QWidget):
    #: older day, newer day
    compare_clicked = Signal(object, object)
    #: the snapshot's day
    export_clicked = Signal(object)
    prune_clicked = Signal()
    refresh_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("History")
        self.where = wrapped(accessible_name="History summary", parent=self)
        self.chart = SizeChart(self)
        self.table = rows_table(COLUMNS, "Snapshots", self)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAccessibleDescription(HINT)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.compare = button("What change&d", self, self._emit_compare, HINT)
        tip = "Save the selected snapshot as CSV with Exportify's columns"
        self.export = button("E&xport CSV...", self, self._emit_export, tip)
        self.prune = button("Delete old s&napshots...", self, self.prune_clicked)
        tip = "Read the list again (Ctrl+R refreshes everything)"
        self.refresh = button("Refresh history", self, self.refresh_clicked, tip)
        self.changes_title = wrapped(accessible_name="What changed", parent=self)
        self.changes = rows_table(CHANGE_COLUMNS, "Changed songs", self)
        buttons = row(None, self.compare, self.export, self.prune, self.refresh)
        changes = (self.changes_title, self.changes)
        stack(self, self.where, self.chart, self.table, buttons, *changes)
        self._snapshots: tuple[Snapshot, ...] = ()
        self._diff: SnapshotDiff | None = None
        self._ready = False
        self._busy = False
        self._render_diff(None)
        self._selection_changed()

    def show_state(self, d: Dashboard) -> None:
        self._ready = d.ready and d.user_id is not None
        self.where.setText(_summary(d))
        history = d.history
        snapshots = history.snapshots if history is not None else ()
        if snapshots != self._snapshots:
            self._render_snapshots(snapshots)
        if d.diff is not self._diff:
            self._render_diff(d.diff)
        busy = bool({"history", "diff", "export", "prune"} & d.pending)
        self.refresh.setEnabled(self._ready and "history" not in d.pending)
        self.prune.setEnabled(self._ready and not busy and bool(snapshots) and bool(d.keep_daily))
        self.prune.setToolTip(
            PRUNE_OFF
            if not d.keep_daily
            else f"Keep the newest {d.keep_daily} and each month's newest; favdesk asks first"
        )
        self._busy = busy
        self._selection_changed()

    # the snapshots

    def _render_snapshots(self, snapshots: tuple[Snapshot, ...]) -> None:
        keep = {s.day for s in self.selected()}
        self._snapshots = snapshots
        self.table.setRowCount(len(snapshots))
        for number, snapshot in enumerate(snapshots):
            songs = f"{snapshot.count:,}" if snapshot.count is not None else "?"
            cells = (str(snapshot.day), songs, size(snapshot.size), snapshot.change)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if snapshot.problem:
                    item.setToolTip(plain_tip(snapshot.problem))
                self.table.setItem(number, column, item)
            if snapshot.day in keep:
                self.table.selectRow(number)
        counted = [(s.day, s.count) for s in reversed(snapshots) if s.count is not None]
        self.chart.set_points(tuple(counted))

    def selected(self) -> list[Snapshot]:
        """The selected snapshots, newest first."""
        rows = sorted(index.row() for index in self.table.selectionModel().selectedRows())
        return [self._snapshots[r] for r in rows if r < len(self._snapshots)]

    def pair(self) -> tuple[date, date] | None:
        """What "What changed" compares: the two selected, one and the one before it, or with
        nothing selected the last two."""
        chosen = self.selected()
        if len(chosen) == 2:
            return chosen[1].day, chosen[0].day
        if len(chosen) > 2:
            return None
        start = self._snapshots.index(chosen[0]) if chosen else 0
        if start + 1 >= len(self._snapshots):
            return None
        return self._snapshots[start + 1].day, self._snapshots[start].day

    def _selection_changed(self) -> None:
        idle = self._ready and not self._busy
        self.compare.setEnabled(idle and self.pair() is not None)
        self.export.setEnabled(idle and len(self.selected()) == 1)

    def _emit_compare(self) -> None:
        pair = self.pair()
        if pair is not None:
            self.compare_clicked.emit(*pair)

    def _emit_export(self) -> None:
        chosen = self.selected()
        if len(chosen) == 1:
            self.export_clicked.emit(chosen[0].day)

    # what changed

    def _render_diff(self, changes: SnapshotDiff | None) -> None:
        self._diff = changes
        self.changes_title.setVisible(changes is not None)
        self.changes.setVisible(changes is not None)
        if changes is None:
            self.changes.setRowCount(0)
            return
        rows = [("+", t) for t in changes.added] + [("-", t) for t in changes.removed]
        shown = rows[:MAX_CHANGE_ROWS]
        title = f"{changes.old.day} -> {changes.new.day}: {changes.summary}"
        if len(rows) > len(shown):
            title += (
                f" (showing the first {len(shown):,}: `favdesk diff {changes.old.day} "
                f"{changes.new.day}` lists them all)"
            )
        self.changes_title.setText(title)
        self.changes.setRowCount(len(shown))
        for number, (sign, track) in enumerate(shown):
            for column, text in enumerate((sign, *_track_cells(track))):
                self.changes.setItem(number, column, QTableWidgetItem(text))


def _summary(d: Dashboard) -> str:
    where = d.storage_description or "the configured storage"
    if d.user_id is None:
        return f"Snapshots are kept in {where}. Link an account to see them."
    if d.history_reading is not None:
        done, total, day = d.history_reading
        return f"Reading the snapshot of {day} ({done} of {total}) to count its songs..."
    if d.history_error:
        return f"Could not list the snapshots in {where}: {d.history_error}"
    history: History | None = d.history
    if history is None:
        return f"Listing the snapshots in {where}..."
    count = len(history.snapshots)
    return f"{count} snapshot{'s' if count != 1 else ''} in {where}"


def _track_cells(track: Track) -> tuple[str, str, str, str]:
    if track.kind is TrackKind.UNAVAILABLE:
        name = "(a song Spotify no longer serves)"
    else:
        name = track.name + (" [local file]" if track.kind is TrackKind.LOCAL else "")
    return name, ", ".join(track.artists), track.album, track.added_at[:10]
