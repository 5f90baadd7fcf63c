"""Log: the worker's log lines, newest last, copyable, and bounded so a long run stays light."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QApplication, QPlainTextEdit, QWidget

from favdesk.gui.panels.common import SELECTABLE, button, row, stack

MAX_LINES = 2000


class LogPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Worker log")
        self.text = QPlainTextEdit(self)
        self.text.setAccessibleName("Worker log lines")
        self.text.setAccessibleDescription(f"The newest {MAX_LINES:,} lines, newest last")
        self.text.setReadOnly(True)
        self.text.setTextInteractionFlags(SELECTABLE)  # Shift+arrows, Ctrl+A and Ctrl+C work
        self.text.setTabChangesFocus(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setPlaceholderText("The worker's log lines appear here while it runs jobs.")
        self.copy = button("Copy to clip&board", self, self.copy_all, "Copy every line shown")
        stack(self, self.text, row(None, self.copy))

    def append(self, line: str) -> None:
        """Add a line at the bottom; follow it only if the user had not scrolled up."""
        bar = self.text.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        self.text.appendPlainText(line)
        if at_bottom:
            bar.setValue(bar.maximum())

    def lines(self) -> list[str]:
        return self.text.toPlainText().splitlines()

    def copy_all(self) -> None:
        QApplication.clipboard().setText(self.text.toPlainText())
