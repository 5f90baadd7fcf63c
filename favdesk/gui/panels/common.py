"""Pieces every panel uses: palette-aware tone colours, status lines, buttons, rows and tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from PySide6.QtCore import QEvent, SignalInstance
from PySide6.QtGui import QColor, QPainter, QPalette, Qt  # QtGui.Qt adds the rich-text helpers
from PySide6.QtWidgets import (
    QAbstractItemView,
    QBoxLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: Tone -> (colour on a light palette, colour on a dark palette); each reads at 4.5:1 or more
#: on its palette's window colour (tests/gui/test_window_states.py checks the contrast).
TONES = {
    "ok": ("#1b7330", "#81c995"),
    "busy": ("#1a66c9", "#8ab4f8"),
    "warn": ("#a15c00", "#fdd663"),
    "error": ("#c5221f", "#f28b82"),
}
SELECTABLE = (
    Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
)


def is_dark(palette: QPalette) -> bool:
    """Dark palette: text lighter than the window (Vorta's `uses_dark_mode`)."""
    text = palette.color(QPalette.ColorRole.WindowText)
    return text.lightness() > palette.color(QPalette.ColorRole.Window).lightness()


def tone_colour(tone: str, palette: QPalette) -> QColor:
    """A colour for `tone` that reads well on the current palette; neutral is the text colour."""
    if tone not in TONES:
        return palette.color(QPalette.ColorRole.WindowText)
    light, dark = TONES[tone]
    return QColor(dark if is_dark(palette) else light)


def selectable(label: QLabel) -> QLabel:
    """Plain text a person can select and copy, without making the label a Tab stop.

    Plain, because labels show words from outside (a display name, Spotify's or Storage's error
    text, a file name) that Qt would otherwise render as markup when they look like it.
    Keyboard selection would make Qt put every label in the Tab chain; a click gives it focus
    (then Shift+arrows and Ctrl+C work), while Tab moves only between controls.
    """
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(label.textInteractionFlags() | SELECTABLE)
    label.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    return label


def plain_tip(text: str) -> str:
    """`text` as a tooltip that shows it as written (Qt renders one that looks like markup)."""
    return Qt.convertFromPlainText(text) if Qt.mightBeRichText(text) else text


class StatusLabel(QLabel):
    """A coloured dot and words: the state is always said in words, never by colour alone.

    The dot is markup, so the words are escaped."""

    def __init__(self, accessible_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName(accessible_name)
        self.setWordWrap(True)
        selectable(self)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.words = ""
        self.tone = "neutral"

    def show_status(self, words: str, tone: str) -> None:
        self.words, self.tone = words, tone
        colour = tone_colour(tone, self.palette()).name()
        self.setText(f'<span style="color:{colour}">&#9679;</span> {_escape(words)}')
        self.setAccessibleDescription(words)
        self.setToolTip(plain_tip(words))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        """Re-tint when the system palette switches between light and dark."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.words:
            self.show_status(self.words, self.tone)


class Card(QGroupBox):
    """A titled section of the dashboard."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setAccessibleName(title)


def wrapped(text: str = "", accessible_name: str = "", parent: QWidget | None = None) -> QLabel:
    """A selectable, word-wrapped label (messages and remedies can be long and copied)."""
    label = selectable(QLabel(text, parent))
    label.setWordWrap(True)
    if accessible_name:
        label.setAccessibleName(accessible_name)
    return label


def button(
    text: str,
    parent: QWidget,
    clicked: SignalInstance | Callable[[], object] | None = None,
    tip: str = "",
) -> QPushButton:
    """A push button that fires `clicked` (a signal to forward, or a function) when pressed."""
    made = QPushButton(text, parent)
    if clicked is not None:
        made.clicked.connect(clicked)
    if tip:
        made.setToolTip(tip)
    return made


def row(*items: QWidget | None) -> QHBoxLayout:
    """Widgets side by side; a None takes up the free space (buttons after it sit right)."""
    layout = QHBoxLayout()
    _fill(layout, items)
    return layout


def stack(parent: QWidget, *items: QWidget | QLayout | None) -> QVBoxLayout:
    """`parent`'s layout: widgets and rows top to bottom; a None takes up the free space."""
    layout = QVBoxLayout(parent)
    _fill(layout, items)
    return layout


def _fill(layout: QBoxLayout, items: tuple[QWidget | QLayout | None, ...]) -> None:
    for item in items:
        if item is None:
            layout.addStretch()
        elif isinstance(item, QLayout):
            layout.addLayout(item)
        else:
            layout.addWidget(item)


def rows_table(columns: tuple[str, ...], accessible_name: str, parent: QWidget) -> QTableWidget:
    """A read-only table whose rows are picked one at a time (jobs, files)."""
    table = QTableWidget(0, len(columns), parent)
    table.setAccessibleName(accessible_name)
    table.setHorizontalHeaderLabels(columns)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move between rows
    table.verticalHeader().hide()
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setStretchLastSection(True)
    return table


def fill_rows(table: QTableWidget, rows: list[tuple[str, tuple[str, ...]]]) -> None:
    """Show (key, cells) rows, each cell's text also its tooltip and the key in its
    `UserRole`; the row selected before stays selected if its key is still there."""
    keep = selected_key(table)
    table.setRowCount(len(rows))
    for number, (key, cells) in enumerate(rows):
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, key)
            item.setToolTip(plain_tip(text))
            table.setItem(number, column, item)
        if key == keep:
            table.selectRow(number)


def selected_key(table: QTableWidget) -> str | None:
    """What the selected row stands for: its first cell's `UserRole` data (a job id, a name)."""
    rows = table.selectionModel().selectedRows()
    if not rows:
        return None
    item = table.item(rows[0].row(), 0)
    return item.data(Qt.ItemDataRole.UserRole) if item is not None else None


@contextmanager
def painting(widget: QWidget) -> Iterator[QPainter]:
    """A painter on `widget` for one `paintEvent`, ended whatever happens."""
    painter = QPainter(widget)
    try:
        yield painter
    finally:
        painter.end()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
