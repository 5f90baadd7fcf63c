"""A sparkline of favdesk's Redis commands: one bar a minute for the last hour, QPainter only."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from favdesk.gui.panels.common import painting


class Sparkline(QWidget):
    """Bars of per-minute counts, oldest left; flat (a baseline only) when nothing was sent."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Redis commands per minute, last hour")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.values: tuple[int, ...] = ()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(180, self.fontMetrics().height() * 2)

    def set_values(self, values: tuple[int, ...]) -> None:
        """Counts oldest first; repainted only when they changed."""
        if values == self.values:
            return
        self.values = values
        peak = max(values, default=0)
        self.setAccessibleDescription(
            f"{sum(values):,} commands in {len(values)} minutes, at most {peak:,} in one"
        )
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        with painting(self) as painter:
            self._paint(painter)

    def _paint(self, painter: QPainter) -> None:
        area = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        baseline = self.palette().color(QPalette.ColorRole.Mid)
        painter.fillRect(QRectF(area.left(), area.bottom(), area.width(), 1), baseline)
        peak = max(self.values, default=0)
        if not peak:
            return
        bar = self.palette().color(QPalette.ColorRole.Highlight)
        width = area.width() / len(self.values)
        for index, value in enumerate(self.values):
            height = max(value / peak * area.height(), 1.0) if value else 0.0
            left = area.left() + index * width
            painter.fillRect(QRectF(left, area.bottom() - height, max(width - 1, 1), height), bar)
