"""DrawPanel: a small canvas to draw a digit with the mouse, for the digits models."""

from __future__ import annotations

from typing import Optional

import numpy as np
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QVBoxLayout, QWidget

# Small enough to sit beside the previews without making the input area taller or
# wider than it is (a bigger canvas pushed the docks narrower; issue #12).
SIDE = 112
PEN_WIDTH = 11


class DrawCanvas(QWidget):
    """Owns the drawing; white ink on black, like the dataset's digits."""

    drawn = Signal(object)  # (SIDE, SIDE) float32 0..1, after each stroke

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setFixedSize(SIDE, SIDE)
        self.image = QImage(SIDE, SIDE, QImage.Format.Format_Grayscale8)
        self.clear()
        self._last: Optional[QPoint] = None
        self.setCursor(Qt.CursorShape.CrossCursor)

    def clear(self) -> None:
        self.image.fill(0)
        self.update()

    def array(self) -> np.ndarray:
        ptr = self.image.constBits()
        data = np.frombuffer(ptr, np.uint8).reshape(SIDE, self.image.bytesPerLine())
        return data[:, :SIDE].astype(np.float32) / 255.0

    def _line_to(self, point: QPoint) -> None:
        painter = QPainter(self.image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(Qt.GlobalColor.white, PEN_WIDTH, Qt.PenStyle.SolidLine,
                            Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        painter.drawLine(self._last or point, point)
        painter.end()
        self._last = point
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        self._last = None
        self._line_to(event.position().toPoint())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._line_to(event.position().toPoint())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        self._last = None
        self.drawn.emit(self.array())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        QPainter(self).drawImage(0, 0, self.image)


class DrawPanel(QWidget):
    """The canvas with a Clear button beside it (not below: the canvas alone sets the
    panel's height)."""

    drawn = Signal(object)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.canvas = DrawCanvas()
        self.canvas.setToolTip("Draw a digit: white ink on black, like the dataset's")
        self.clear_button = QPushButton("Clear")
        buttons = QVBoxLayout()
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas)
        layout.addLayout(buttons)
        self.canvas.drawn.connect(self.drawn)
        self.clear_button.clicked.connect(self.canvas.clear)
