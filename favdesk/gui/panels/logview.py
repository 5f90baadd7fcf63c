"""Log: the worker's log lines, newest last, copyable, and bounded so a long run stays light."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

MAX_LINES = 2000


class LogPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Worker log")
        self.text = QPlainTextEdit(self)
        self.text.setAccessibleName("Worker log lines")
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText("The worker's log lines appear here while it runs jobs.")
        self.copy = QPushButton("&Copy all", self)
        self.copy.clicked.connect(self.copy_all)
        row = QHBoxLayout()
        row.addStretch()
        row.addWidget(self.copy)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addLayout(row)

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
