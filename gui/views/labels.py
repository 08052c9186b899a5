"""Text that fits: a one-line label that elides instead of widening the window, a
token axis that thins its labels to the ones that fit, and captions above small plots."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

#: Widest a token label may be before it is shortened (word pieces can be long).
TOKEN_CHARS = 8


class ElidedLabel(QLabel):
    """A one-line label that shows as much of its text as fits, ending in "…"; the
    whole text is its tooltip then. A plain QLabel's minimum width is its whole text,
    so one long read-out (a hover value, a list of units) would widen the window."""

    def __init__(self, text: str = "", parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        self._full = text
        self._elide()
        self.updateGeometry()

    def text(self) -> str:
        """The whole text, not the part that fits."""
        return self._full

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self._full) + margins.left() + \
            margins.right() + 2 * self.margin() + 4
        return QSize(width, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(min(self.sizeHint().width(), 40), super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.contentsRect().width() - 2 * self.margin(), 0)
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width)
        QLabel.setText(self, shown)
        self.setToolTip(self._full if shown != self._full else "")


def short_token(token: str, chars: int = TOKEN_CHARS) -> str:
    return token if len(token) <= chars else token[:chars - 1] + "…"


class TokenAxis(pg.AxisItem):
    """An axis labelled with tokens at cell centres (token i spans i…i+1). When the
    cells are too small for every label, it shows every k-th one, so labels never
    overlap; ``_tickLevels`` keeps them all (what the axis is labelled with)."""

    def __init__(self, orientation: str, point_size: int = 8) -> None:
        super().__init__(orientation)
        font = QFont()
        font.setPointSize(point_size)
        self.setTickFont(font)
        self.setStyle(tickTextOffset=2, tickLength=-3)
        self.tokens: list[str] = []

    #: Longest label before it is shortened with "…".
    chars = TOKEN_CHARS
    #: Pixels between two labels side by side.
    gap = 6

    def set_tokens(self, tokens: Sequence[str]) -> None:
        self.tokens = [short_token(str(t), self.chars) for t in tokens]
        self.setTicks([[(i + 0.5, t) for i, t in enumerate(self.tokens) if t]])
        # Make room for the labels now: pyqtgraph grows an axis only after drawing text
        # that did not fit, so the first picture (a screenshot, an export) lacked them.
        metrics = self._metrics()
        if self.orientation in ("left", "right"):
            size = max((metrics.horizontalAdvance(t) for t in self.tokens), default=0)
        else:
            size = metrics.height() if self.tokens else 0
        self._updateMaxTextSize(int(size))

    def step(self) -> int:
        """Show every ``step()``-th label: the smallest step whose labels do not touch."""
        if not self.tokens:
            return 1
        lo, hi = self.range
        length = self.height() if self.orientation in ("left", "right") else self.width()
        per_cell = length / max(abs(hi - lo), 1e-9)
        metrics = self._metrics()
        if self.orientation in ("left", "right"):
            needed = metrics.height() + 1
        else:
            needed = max(metrics.horizontalAdvance(t) for t in self.tokens) + self.gap
        return max(1, math.ceil(needed / max(per_cell, 1e-9)))

    def _metrics(self) -> QFontMetrics:
        return QFontMetrics(self.style["tickFont"] or QFont())

    def generateDrawSpecs(self, p):  # noqa: N802 (pyqtgraph override)
        full = self._tickLevels
        if full and self.tokens:
            k = self.step()
            self._tickLevels = [[tick for i, tick in enumerate(full[0]) if i % k == 0]]
        try:
            return super().generateDrawSpecs(p)
        finally:
            self._tickLevels = full


class Caption:
    """A head's caption: the title of its tile's plot, so it sits above the pattern,
    never on top of it."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot, self.text, self.colour = plot, "", "#dddddd"

    def setText(self, text: str) -> None:  # noqa: N802 (like pg.TextItem's)
        self.text = text
        self._show()

    def setColor(self, colour: str) -> None:  # noqa: N802 (like pg.TextItem's)
        self.colour = colour
        self._show()

    def _show(self) -> None:
        self.plot.setTitle(self.text, color=self.colour, size="8pt")
        # pyqtgraph reserves 30 px for a title: most of a small tile. One 8-pt line.
        font = QFont()
        font.setPointSize(8)
        height = QFontMetrics(font).height() + 4
        self.plot.titleLabel.setMaximumHeight(height)
        self.plot.layout.setRowFixedHeight(0, height)

    def toPlainText(self) -> str:  # noqa: N802 (like pg.TextItem's)
        return self.text

    def sceneBoundingRect(self):  # noqa: N802 (like pg.TextItem's)
        return self.plot.titleLabel.sceneBoundingRect()


def tile_plot(grid: pg.GraphicsLayoutWidget, row: int, col: int, left: bool = True,
              bottom: bool = True) -> pg.PlotItem:
    """One head's small plot: square cells, no mouse panning, tokens on the ``left``
    and ``bottom`` axes where asked (tiles in a grid share them along its edges, so
    small tiles keep their room)."""
    plot = grid.addPlot(row=row, col=col, axisItems={"left": TokenAxis("left", 6),
                                                     "bottom": TokenAxis("bottom", 6)})
    plot.showAxis("left", left)
    plot.showAxis("bottom", bottom)
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(False, False)
    plot.hideButtons()
    box = plot.getViewBox()
    box.setAspectLocked(True)
    box.invertY(True)
    box.disableAutoRange()
    return plot


def titled(title: QLabel, body: QWidget) -> QWidget:
    """``body`` under its ``title`` label, with no margins."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    layout.addWidget(title)
    layout.addWidget(body, 1)
    return box


def side_panel(content: QWidget, width: int) -> QScrollArea:
    """``content`` in a frameless, fixed-width column that scrolls vertically: a dock's
    words and buttons scroll in a short window rather than making the window taller."""
    scroll = QScrollArea()
    scroll.setWidget(content)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setFixedWidth(width)
    scroll.setMinimumHeight(40)
    return scroll


class FitsWidth(QWidget):
    """A widget whose height follows its width (``height_for``): a grid of cells that
    wraps into more rows when narrow, inside a scrolling page."""

    def height_for(self, width: int) -> int:
        raise NotImplementedError

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(360, self.height_for(360))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        h = self.height_for(max(self.width(), 1))
        if h != self.height():
            self.setFixedHeight(h)
