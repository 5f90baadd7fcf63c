"""Pieces every panel uses: tone colours that follow the palette, and a status line widget."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QGroupBox, QLabel, QWidget

#: Tone -> (colour on a light palette, colour on a dark palette).
TONES = {
    "ok": ("#1e7e34", "#81c995"),
    "busy": ("#1a66c9", "#8ab4f8"),
    "warn": ("#a15c00", "#fdd663"),
    "error": ("#c5221f", "#f28b82"),
}
SELECTABLE = (
    Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
)


def is_dark(palette: QPalette) -> bool:
    """Dark palette: text lighter than the window (Vorta's `uses_dark_mode`)."""
    return (
        palette.color(QPalette.WindowText).lightness() > palette.color(QPalette.Window).lightness()
    )


def tone_colour(tone: str, palette: QPalette) -> QColor:
    """A colour for `tone` that reads well on the current palette; neutral is the text colour."""
    if tone not in TONES:
        return palette.color(QPalette.WindowText)
    light, dark = TONES[tone]
    return QColor(dark if is_dark(palette) else light)


class StatusLabel(QLabel):
    """A coloured dot and words: the state is always said in words, never by colour alone."""

    def __init__(self, accessible_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName(accessible_name)
        self.setWordWrap(True)
        self.setTextInteractionFlags(self.textInteractionFlags() | SELECTABLE)
        self.words = ""
        self.tone = "neutral"

    def show_status(self, words: str, tone: str) -> None:
        self.words, self.tone = words, tone
        colour = tone_colour(tone, self.palette()).name()
        self.setText(f'<span style="color:{colour}">&#9679;</span> {_escape(words)}')
        self.setAccessibleDescription(words)
        self.setToolTip(words)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Re-tint when the system palette switches between light and dark."""
        super().changeEvent(event)
        if event.type() == event.Type.PaletteChange and self.words:
            self.show_status(self.words, self.tone)


class Card(QGroupBox):
    """A titled section of the dashboard."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setAccessibleName(title)


def wrapped(text: str = "", accessible_name: str = "", parent: QWidget | None = None) -> QLabel:
    """A selectable, word-wrapped label (messages and remedies can be long and copied)."""
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setTextInteractionFlags(label.textInteractionFlags() | SELECTABLE)
    if accessible_name:
        label.setAccessibleName(accessible_name)
    return label


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
