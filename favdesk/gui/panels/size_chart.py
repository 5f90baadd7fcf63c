"""The library's size over time: songs per snapshot as a line, drawn with QPainter."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from favdesk.gui.panels.common import painting

#: Room for the axis labels, in multiples of the font's height.
LEFT, BOTTOM = 4.5, 1.5


class SizeChart(QWidget):
    """Songs (y) against the snapshot's day (x, to scale); a dot per snapshot."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Library size over time")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.points: tuple[tuple[date, int], ...] = ()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(400, self.fontMetrics().height() * 8)

    def set_points(self, points: tuple[tuple[date, int], ...]) -> None:
        """(day, songs) oldest first; redrawn only when they changed."""
        if points == self.points:
            return
        self.points = points
        if points:
            (first, low), (last, high) = points[0], points[-1]
            self.setAccessibleDescription(
                f"{len(points)} snapshots from {first} ({low:,} songs) to {last} ({high:,} songs)"
            )
        else:
            self.setAccessibleDescription("No snapshots yet")
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        with painting(self) as painter:
            self._paint(painter)

    def _paint(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        line = self.palette().color(QPalette.ColorRole.Highlight)
        height = self.fontMetrics().height()
        area = QRectF(self.rect()).adjusted(LEFT * height, height / 2, -height, -BOTTOM * height)
        painter.setPen(QPen(text))
        if not self.points:
            painter.drawText(QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter, "No snapshots yet")
            return
        self._axes(painter, area)
        points = self._placed(area)
        painter.setPen(QPen(line, 2))
        painter.drawPolyline(QPolygonF(points))
        painter.setBrush(line)
        for point in points:
            painter.drawEllipse(point, 2.5, 2.5)

    def _bounds(self) -> tuple[int, int, int, int]:
        days = [day.toordinal() for day, _ in self.points]
        counts = [count for _, count in self.points]
        low, high = min(counts), max(counts)
        if low == high:
            low, high = max(low - 1, 0), high + 1
        return min(days), max(days), low, high

    def _placed(self, area: QRectF) -> list[QPointF]:
        first, last, low, high = self._bounds()
        span = max(last - first, 1)
        placed = []
        for day, count in self.points:
            share = (day.toordinal() - first) / span if last > first else 0.5
            x = area.left() + share * area.width()
            y = area.bottom() - (count - low) / (high - low) * area.height()
            placed.append(QPointF(x, y))
        return placed

    def _axes(self, painter: QPainter, area: QRectF) -> None:
        first, last, low, high = self._bounds()
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        painter.drawLine(area.bottomLeft(), area.topLeft())
        label = QRectF(0, 0, area.left() - 4, self.fontMetrics().height())
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(label.translated(0, area.top() - label.height() / 2), right, f"{high:,}")
        painter.drawText(label.translated(0, area.bottom() - label.height() / 2), right, f"{low:,}")
        below = QRectF(area.left(), area.bottom() + 2, area.width(), label.height())
        painter.drawText(below, Qt.AlignmentFlag.AlignLeft, str(date.fromordinal(first)))
        if last > first:
            painter.drawText(below, Qt.AlignmentFlag.AlignRight, str(date.fromordinal(last)))
