"""The examples a unit page shows: dataset examples drawn as their picture with the unit's
activation map laid over it (image models), or as their tokens coloured by the unit's
value at each position (token models). One painted widget per strip: 16 examples draw
in well under a frame, and clicking one loads it as the input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from core.unit_values import ExampleStrip
from gui.views.labels import FitsWidth
from gui.views.unit_colours import ColourScale, columns, grey, overlay, sig, value_colour

WRONG = QColor("#d0312d")
#: Narrowest example cell, in pixels: "label 2 · says 2" and "-0.0744 … #1234" fit.
CELL_MIN = 86
CELL_MAX = 120
GAP = 6


def name_of(names: Sequence[str], i: int) -> str:
    return names[i] if 0 <= i < len(names) else ("–" if i < 0 else str(i))


@dataclass(frozen=True)
class Extra:
    """A cell that is not a dataset example (the optimised input): drawn first, framed."""

    picture: np.ndarray
    lines: tuple[str, str]
    colour: str = "#e0a800"


class _Strip(FitsWidth):
    """What the two kinds of strip share: a fixed height for their width, clicks and
    tooltips on cells."""

    example_clicked = Signal(int)   # index into the evaluation set

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.strip: Optional[ExampleStrip] = None
        self.names: tuple[str, ...] = ()
        self.scale = ColourScale(0.0, 1.0)
        self.font_small = QFont()
        self.font_small.setPointSize(8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_strip(self, strip: ExampleStrip, scale: ColourScale,
                  names: Sequence[str]) -> None:
        """Show ``strip``; ``scale`` turns values into colour (shared by the page's
        strips), ``names`` are the class (or vocabulary) names for labels."""
        self.strip, self.scale, self.names = strip, scale, tuple(names)
        self._fit()
        self.update()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(2 * CELL_MIN, self.height_for(2 * CELL_MIN))

    def cell_rects(self, width: int) -> list[QRect]:
        raise NotImplementedError

    def height_for(self, width: int) -> int:
        rects = self.cell_rects(width)
        return (max(r.bottom() for r in rects) + GAP) if rects else 24

    def cell_at(self, pos: QPoint) -> Optional[int]:
        """Which example (position in the strip) is under ``pos``; ``None`` if none."""
        for i, rect in enumerate(self.cell_rects(self.width())):
            if rect.contains(pos):
                return i - self._offset()
        return None

    def _offset(self) -> int:
        return 0

    def cell_centre(self, i: int) -> QPoint:
        """The middle of example ``i``'s cell (for tests and scripted clicks)."""
        return self.cell_rects(self.width())[i + self._offset()].center()

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        i = self.cell_at(event.position().toPoint())
        if self.strip is not None and i is not None and 0 <= i < len(self.strip.indices) \
                and event.button() == Qt.MouseButton.LeftButton:
            self.example_clicked.emit(int(self.strip.indices[i]))
            event.accept()
            return
        super().mousePressEvent(event)

    def event(self, event) -> bool:  # noqa: D401 (Qt override)
        if event.type() == QEvent.Type.ToolTip:
            i = self.cell_at(event.pos())
            if self.strip is not None and i is not None and 0 <= i < len(self.strip.indices):
                QToolTip.showText(event.globalPos(), self.describe(i), self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    def describe(self, i: int) -> str:
        raise NotImplementedError

    def _caption(self, i: int) -> tuple[str, str, bool]:
        """(label words, prediction words, wrong?) of example ``i``."""
        s = self.strip
        label, pred = int(s.labels[i]), int(s.predicted[i])
        wrong = label >= 0 and pred >= 0 and label != pred
        return name_of(self.names, label), name_of(self.names, pred), wrong


class ImageStrip(_Strip):
    """Examples as pictures (k, h, w) with the unit's map (k, H, W) over them."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.extra: Optional[Extra] = None
        self._images: list[tuple[QImage, Optional[QImage]]] = []

    def set_strip(self, strip: ExampleStrip, scale: ColourScale,
                  names: Sequence[str]) -> None:
        self._images = []
        for i in range(len(strip.indices)):
            picture = grey(strip.pictures[i]) if strip.pictures is not None else None
            layer = overlay(strip.maps[i], scale) if strip.maps is not None else None
            self._images.append((picture, layer))
        super().set_strip(strip, scale, names)

    def set_extra(self, extra: Optional[Extra]) -> None:
        """Draw ``extra`` (the optimised input) as the first cell, or no such cell."""
        self.extra = extra
        self._extra_image = grey(extra.picture) if extra is not None else None
        self._fit()
        self.update()

    def _offset(self) -> int:
        return 1 if self.extra is not None else 0

    def _count(self) -> int:
        return (len(self.strip.indices) if self.strip is not None else 0) + self._offset()

    def _line(self) -> int:
        return QFontMetrics(self.font_small).height()

    def cell_rects(self, width: int) -> list[QRect]:
        n = self._count()
        cols = columns(n, (width + GAP) // (CELL_MIN + GAP))
        cell = min((width - (cols - 1) * GAP) // cols if n else CELL_MIN, CELL_MAX)
        side = cell
        height = side + 2 * self._line() + 4
        return [QRect((i % cols) * (cell + GAP), (i // cols) * (height + GAP), side, height)
                for i in range(n)]

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        if self.strip is None:
            return
        p = QPainter(self)
        p.setFont(self.font_small)
        rects = self.cell_rects(self.width())
        line = self._line()
        if self.extra is not None:
            self._paint_extra(p, rects[0], line)
        for i, rect in enumerate(rects[self._offset():]):
            box = QRect(rect.left(), rect.top(), rect.width(), rect.width())
            picture, layer = self._images[i]
            p.fillRect(box, QColor("#111"))
            if picture is not None:
                p.drawImage(QRectF(box), picture)
            if layer is not None:
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                p.drawImage(QRectF(box), layer)
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            label, pred, wrong = self._caption(i)
            top = box.bottom() + 2
            self._draw_pair(p, QRect(rect.left(), top, rect.width(), line), label, pred,
                            wrong)
            self._draw_value(p, QRect(rect.left(), top + line, rect.width(), line),
                             sig(self.strip.values[i]), f"#{int(self.strip.indices[i])}")
        p.end()

    def _draw_pair(self, p: QPainter, rect: QRect, label: str, pred: str,
                   wrong: bool) -> None:
        """"label 2 · says 5" in one line, the answer red if the model was wrong. Always
        these words (a narrow cell does not switch to another form): long class names
        are shortened, each to its share of the line."""
        metrics = QFontMetrics(self.font_small)
        first, second = "label ", " · says "
        room = rect.width() - metrics.horizontalAdvance(first + second)
        if metrics.horizontalAdvance(label + pred) > room:
            pred = metrics.elidedText(pred, Qt.TextElideMode.ElideRight,
                                      min(metrics.horizontalAdvance(pred), room // 2))
            label = metrics.elidedText(label, Qt.TextElideMode.ElideRight,
                                       room - metrics.horizontalAdvance(pred))
        text = self.palette().text().color()
        p.setPen(text)
        head = first + label + second
        p.drawText(rect, Qt.AlignmentFlag.AlignLeft, head)
        p.setPen(WRONG if wrong else text)
        p.drawText(rect.adjusted(metrics.horizontalAdvance(head), 0, 0, 0),
                   Qt.AlignmentFlag.AlignLeft, pred)

    def _draw_value(self, p: QPainter, rect: QRect, value: str, index: str) -> None:
        """The value on the left, "#example" on the right of the same line: the index
        is never cut off (the value keeps what room is left)."""
        metrics = QFontMetrics(self.font_small)
        p.setPen(self.palette().text().color())
        p.drawText(rect, Qt.AlignmentFlag.AlignRight, index)
        room = rect.width() - metrics.horizontalAdvance(index) - 4
        p.drawText(QRect(rect.left(), rect.top(), max(room, 0), rect.height()),
                   Qt.AlignmentFlag.AlignLeft,
                   metrics.elidedText(value, Qt.TextElideMode.ElideRight, max(room, 0)))

    def captions(self, i: int) -> tuple[str, str]:
        """The two lines under example ``i`` as drawn at full width (for tests)."""
        label, pred, _ = self._caption(i)
        return (f"label {label} · says {pred}",
                f"{sig(self.strip.values[i])} #{int(self.strip.indices[i])}")

    def _paint_extra(self, p: QPainter, rect: QRect, line: int) -> None:
        box = QRect(rect.left(), rect.top(), rect.width(), rect.width())
        p.fillRect(box, QColor("#111"))
        p.drawImage(QRectF(box), self._extra_image)
        p.setPen(QPen(QColor(self.extra.colour), 3))
        p.drawRect(box.adjusted(1, 1, -2, -2))
        p.setPen(QColor(self.extra.colour).darker(130))
        for n, text in enumerate(self.extra.lines):
            p.drawText(QRect(rect.left(), box.bottom() + 2 + n * line, rect.width(), line),
                       Qt.AlignmentFlag.AlignLeft, text)

    def describe(self, i: int) -> str:
        s = self.strip
        label, pred, wrong = self._caption(i)
        where = ""
        if s.maps is not None:
            y, x = divmod(int(s.positions[i]), s.maps.shape[2])
            where = f" at y={y}, x={x}"
        verdict = " (wrong)" if wrong else ""
        return (f"Example {int(s.indices[i])}: label {label}, the model says {pred}{verdict}"
                f" · value {sig(s.values[i], 4)}{where}. Click to load it as the input.")


class TokenStrip(_Strip):
    """Examples as rows of tokens, each cell coloured by the unit's value there."""

    def _metrics(self) -> QFontMetrics:
        return QFontMetrics(self.font_small)

    def _token_layout(self, width: int) -> tuple[list[QRect], list[list[QRect]]]:
        """Each example's rectangle, and its tokens' cells (flowing onto new lines)."""
        if self.strip is None:
            return [], []
        m = self._metrics()
        line = m.height()
        cell_h = line + 4
        rows, cells = [], []
        y = 0
        for tokens in self.strip.tokens:
            top = y
            y += line + 2   # the caption line
            x, row = 0, []
            for token in tokens:
                w = max(m.horizontalAdvance(token) + 6, 14)
                if x + w > width and x > 0:
                    x, y = 0, y + cell_h + 1
                row.append(QRect(x, y, w, cell_h))
                x += w + 1
            y += cell_h
            rows.append(QRect(0, top, width, y - top))
            cells.append(row)
            y += GAP
        return rows, cells

    def cell_rects(self, width: int) -> list[QRect]:
        return self._token_layout(width)[0]

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        if self.strip is None:
            return
        s = self.strip
        p = QPainter(self)
        p.setFont(self.font_small)
        rows, cells = self._token_layout(self.width())
        line = self._metrics().height()
        text = self.palette().text().color()
        for i, (row, row_cells) in enumerate(zip(rows, cells)):
            label, pred, wrong = self._caption(i)
            peak = int(s.positions[i])
            at = s.tokens[i][peak] if peak < len(s.tokens[i]) else "?"
            head = f"{sig(s.values[i])} at '{at}' (#{int(s.indices[i])})"
            guessed = int(s.predicted[i]) >= 0   # a sentence encoder guesses nothing
            if int(s.labels[i]) >= 0:
                head += f" · next {label}, "
            elif guessed:
                head += " · no target, "
            caption = QRect(row.left(), row.top(), row.width(), line)
            p.setPen(text)
            p.drawText(caption, Qt.AlignmentFlag.AlignLeft, head)
            if guessed:
                shift = self._metrics().horizontalAdvance(head)
                p.setPen(WRONG if wrong else text)
                p.drawText(caption.adjusted(shift, 0, 0, 0), Qt.AlignmentFlag.AlignLeft,
                           f"says {pred}")
            values = s.maps[i] if s.maps is not None else np.zeros(len(row_cells))
            for t, cell in enumerate(row_cells):
                v = float(values[t]) if t < len(values) else 0.0
                p.fillRect(cell, value_colour(v, self.scale))
                if t == peak:
                    p.setPen(QPen(QColor("#222"), 2))
                    p.drawRect(cell.adjusted(1, 1, -1, -1))
                p.setPen(QColor("#111"))
                p.drawText(cell, Qt.AlignmentFlag.AlignCenter, s.tokens[i][t])
        p.end()

    def describe(self, i: int) -> str:
        s = self.strip
        label, pred, wrong = self._caption(i)
        peak = int(s.positions[i])
        verdict = " (wrong)" if wrong else ""
        target = f"the next token is {label}" if int(s.labels[i]) >= 0 else \
            "nothing is scored there"
        return (f"Example {int(s.indices[i])}: value {sig(s.values[i], 4)} at position {peak}; "
                f"{target}, the model says {pred}{verdict}. "
                "Click to load it as the input.")
