"""LogitLensView: the logit lens as a heat map (issue #14).

Rows are the residual streams, from the embedding at the bottom to the model's output
at the top (always shown and labelled); columns are the prompt's positions, labelled
"3: ␣the" so repeated tokens stay apart. Each cell names its top next token where the
text fits (zoom in for more) and is coloured by that token's probability, or by the
probability of a target token the user picks. Hover: the cell's top 5; click: its top
10 in the side column.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import (QBoxLayout, QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QVBoxLayout, QWidget)

from gui.views.imaging import SEQUENTIAL, ValueImageItem
from gui.views.labels import ElidedLabel, TokenAxis, short_token, side_panel

HINT = "Hover a cell for its top 5 · click it for its top 10 · wheel to zoom in"
TOP, TARGET = "top", "target"
#: Above this probability the viridis colour is light: the cell's text is drawn dark.
LIGHT = 0.6
SIDE_WIDTH = 175
#: Narrower than this, the side column sits under the heat map, this tall.
NARROW, SIDE_HEIGHT = 640, 180
QWIDGETSIZE_MAX = (1 << 24) - 1


def position_labels(pieces: Sequence[str]) -> list[str]:
    """"3: ␣the": the index keeps a repeated token's columns apart (and is never
    shortened away: only the piece is)."""
    return [f"{i}: {short_token(p)}" for i, p in enumerate(pieces)]


def output_label(label: str) -> str:
    return f"{label} = output"


def percent(p: float) -> str:
    return f"{100 * p:.1f} %" if p >= 0.001 else f"{100 * p:.2g} %"


class PositionAxis(TokenAxis):
    """The position axis: labels as :func:`position_labels` made them."""

    def set_tokens(self, tokens: Sequence[str]) -> None:
        super().set_tokens(tokens)
        self.tokens = [str(t) for t in tokens]
        self.setTicks([[(i + 0.5, t) for i, t in enumerate(self.tokens)]])


class RowAxis(TokenAxis):
    """The layer axis: labels in full, and when they must be thinned the model's output
    (the top row) keeps its label — the ticks are listed from the top down."""

    def set_tokens(self, tokens: Sequence[str]) -> None:
        self.tokens = [str(t) for t in tokens]
        n = len(self.tokens)
        self.setTicks([[(i + 0.5, self.tokens[i]) for i in reversed(range(n))]])
        metrics = self._metrics()
        # A little more than the widest label: pyqtgraph's own offset clipped the
        # output's label by a letter.
        self._updateMaxTextSize(max((metrics.horizontalAdvance(t) + 8 for t in self.tokens),
                                    default=0))


class CellText(pg.GraphicsObject):
    """The top token of every cell, drawn in screen pixels over the image: only where
    a cell is tall and wide enough to hold readable text, so it never smears."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[list[str]] = []
        self.light = np.zeros((0, 0), bool)
        self.font = QFont()
        self.font.setPointSize(7)

    def set_cells(self, texts: list[list[str]], light: np.ndarray) -> None:
        self.prepareGeometryChange()
        self.texts, self.light = texts, light
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        rows = len(self.texts)
        return QRectF(0, 0, len(self.texts[0]) if rows else 0, rows)

    def fits(self, painter_transform) -> bool:
        """Whether one cell, as drawn now, holds a line of at least two characters."""
        cell = painter_transform.mapRect(QRectF(0, 0, 1, 1))
        metrics = QFontMetrics(self.font)
        return (abs(cell.height()) >= metrics.height() - 2
                and abs(cell.width()) >= 2 * metrics.averageCharWidth() + 2)

    def paint(self, painter: QPainter, *_args) -> None:
        if not self.texts:
            return
        transform = painter.transform()
        if not self.fits(transform):
            return
        painter.save()
        painter.resetTransform()
        painter.setFont(self.font)
        metrics = QFontMetrics(self.font)
        view = painter.viewport()
        dark, bright = QColor("#111111"), QColor("#f2f2f2")
        for r, row in enumerate(self.texts):
            for c, text in enumerate(row):
                rect = transform.mapRect(QRectF(c, r, 1, 1))
                if not rect.intersects(QRectF(view)):
                    continue
                shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight,
                                           int(rect.width()) - 2)
                painter.setPen(dark if self.light[r, c] else bright)
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, shown)
        painter.restore()


class LogitLensView(QWidget):
    """Owns the lens heat map, its target and sub-step controls and the top-10 list.

    ``target_requested(text)``: the user typed a target word ("" clears it)."""

    target_requested = Signal(str)
    drawn = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.lens = None
        self.vocab: Sequence[str] = ()
        self.pieces: list[str] = []
        #: The lens rows drawn, bottom to top (indices into ``lens.rows``).
        self.shown: list[int] = []
        self.selected: Optional[tuple[int, int]] = None   # (lens row, position)
        self.row_axis = RowAxis("left")
        self.position_axis = PositionAxis("bottom")
        self.plot = pg.PlotWidget(axisItems={"left": self.row_axis,
                                             "bottom": self.position_axis})
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.image = ValueImageItem(0, self._on_click, self._on_hover)
        self.image.setColorMap(pg.colormap.get(SEQUENTIAL))
        self.plot.addItem(self.image)
        self.cells = CellText()
        self.plot.addItem(self.cells)
        self.mark = pg.PlotDataItem(pen=pg.mkPen("#ff3b30", width=2))
        self.plot.addItem(self.mark)
        self.bar = pg.ColorBarItem(values=(0, 1), interactive=False, width=10,
                                   colorMap=pg.colormap.get(SEQUENTIAL))
        self.bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        self.hover = ElidedLabel(HINT)
        self.caption = QLabel("Analyse › Logit lens reads each residual stream of the "
                              "prompt through the model's final norm and unembedding.")
        self.caption.setWordWrap(True)
        self.target = QLineEdit()
        self.target.setPlaceholderText("e.g. ␣Paris: type “ Paris”")
        self.target.setToolTip("A word whose probability colours the cells (its first "
                               "token). A leading space is part of a word piece: "
                               "“ Paris” (␣Paris) is the word after a space. Enter: apply; "
                               "empty: no target.")
        self.colour = QComboBox()
        self.colour.addItem("top token", TOP)
        self.colour.addItem("target", TARGET)
        self.colour.setToolTip("Colour each cell by the probability of its top token, or "
                               "of the target token")
        self.substeps = QCheckBox("Sub-steps")
        self.substeps.setToolTip("Each block's stream after its attention as well as "
                                 "after its MLP")
        self.top_title = QLabel("Click a cell for its top 10.")
        self.top_title.setWordWrap(True)
        self.top_list = QListWidget()
        self.top_list.setMinimumHeight(60)
        self._build()
        self.target.returnPressed.connect(lambda: self.target_requested.emit(
            self.target.text()))
        self.colour.currentIndexChanged.connect(lambda _i: self._draw())
        # Sub-steps double the rows: fit them all again (the output row was off-screen).
        self.substeps.toggled.connect(lambda _on: self._redraw_fitted())
        self._enable_colour()

    def _build(self) -> None:
        side = QWidget()
        column = QVBoxLayout(side)
        column.setContentsMargins(4, 0, 4, 0)
        column.setSpacing(3)
        target = QHBoxLayout()
        target.addWidget(QLabel("Target:"))
        target.addWidget(self.target, 1)
        column.addLayout(target)
        colour = QHBoxLayout()
        colour.addWidget(QLabel("Colour:"))
        colour.addWidget(self.colour, 1)
        column.addLayout(colour)
        column.addWidget(self.substeps)
        column.addWidget(self.caption)
        column.addWidget(self.top_title)
        column.addWidget(self.top_list, 1)
        self.body = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.addWidget(self.plot, 1)
        self.side = side_panel(side, SIDE_WIDTH)
        self.body.addWidget(self.side)
        body = self.body
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addLayout(body, 1)
        layout.addWidget(self.hover)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_side()

    def _fit_side(self) -> None:
        """A narrow lens (a tab beside the model tree in a short window) keeps its width
        for the positions: the side column goes under the heat map."""
        narrow = self.width() < NARROW
        if narrow == (self.body.direction() == QBoxLayout.Direction.TopToBottom):
            return
        if narrow:
            self.body.setDirection(QBoxLayout.Direction.TopToBottom)
            self.side.setMinimumWidth(0)
            self.side.setMaximumWidth(QWIDGETSIZE_MAX)
            self.side.setFixedHeight(SIDE_HEIGHT)
        else:
            self.body.setDirection(QBoxLayout.Direction.LeftToRight)
            self.side.setMinimumHeight(40)
            self.side.setMaximumHeight(QWIDGETSIZE_MAX)
            self.side.setFixedWidth(SIDE_WIDTH)

    # --- what the controller says -------------------------------------------------------
    def show_message(self, text: str) -> None:
        """No lens to draw (another model, an error): the sentence, nothing stale."""
        self.lens, self.selected, self.shown = None, None, []
        self.caption.setText(text)
        self.image.clear()
        self.image.values = np.zeros((1, 1), np.float32)
        self.cells.set_cells([], np.zeros((0, 0), bool))
        self.mark.setData([], [])
        self.row_axis.set_tokens([])
        self.position_axis.set_tokens([])
        self.top_list.clear()
        self.top_title.setText("")
        self.hover.setText(HINT)

    def show_running(self, text: str) -> None:
        self.caption.setText(text)

    def show_lens(self, lens, vocab: Sequence[str], note: str = "") -> None:
        """Draw ``lens`` (:class:`core.lm_values.LogitLens`); ``vocab``: each token id's
        readable piece; ``note``: what became of the typed target, if anything."""
        previous = self.lens
        keep = self.selected if previous is not None and \
            previous.top_ids.shape == lens.top_ids.shape else None
        self.lens, self.vocab = lens, vocab
        self.pieces = [vocab[int(i)] for i in lens.tokens]
        self._enable_colour()
        if lens.target is not None and (previous is None or previous.target != lens.target):
            # A new target is what the user wants to see: colour by it.
            self.colour.blockSignals(True)
            self.colour.setCurrentIndex(self.colour.findData(TARGET))
            self.colour.blockSignals(False)
        self._enable_colour()
        off = f" · {len(lens.ablations)} ablation(s) on" if lens.ablations else ""
        target = "" if lens.target is None else f" Target: {vocab[lens.target]}."
        self.caption.setText(f"Each cell: the top next token of that residual stream read "
                             f"through the final norm and unembedding.{target}{off}"
                             + (f" {note}" if note else ""))
        self._draw()
        self.plot.getViewBox().autoRange(padding=0)
        self.selected = keep
        self._show_top()
        self.drawn.emit()

    # --- drawing --------------------------------------------------------------------------
    def _redraw_fitted(self) -> None:
        self._draw()
        if self.lens is not None:
            self.plot.getViewBox().autoRange(padding=0)

    def _enable_colour(self) -> None:
        has = self.lens is not None and self.lens.target is not None
        item = self.colour.model().item(self.colour.findData(TARGET))
        item.setEnabled(has)
        if not has and self.colour.currentData() == TARGET:
            self.colour.setCurrentIndex(self.colour.findData(TOP))

    def colour_values(self) -> np.ndarray:
        """(rows shown, T) the probabilities the cells are coloured by."""
        lens = self.lens
        if self.colour.currentData() == TARGET and lens.target_probs is not None:
            values = lens.target_probs
        else:
            values = lens.top_probs[..., 0]
        return np.ascontiguousarray(values[self.shown], np.float32)

    def row_label(self, row: int) -> str:
        label = self.lens.row_labels[row]
        return output_label(label) if row == len(self.lens.rows) - 1 else label

    def _draw(self) -> None:
        lens = self.lens
        if lens is None:
            return
        n = len(lens.rows)
        self.shown = [r for r in range(n) if self.substeps.isChecked() or r == 0
                      or r == n - 1 or not lens.rows[r].endswith(".resid_mid")]
        values = self.colour_values()
        self.image.values = values
        self.image.setImage(values, levels=(0.0, 1.0))
        self.image.setRect(QRectF(0, 0, values.shape[1], values.shape[0]))
        self.bar.setLevels((0.0, 1.0))
        texts = [[self.vocab[int(i)] for i in lens.top_ids[r, :, 0]] for r in self.shown]
        self.cells.set_cells(texts, values > LIGHT)
        self.row_axis.set_tokens([self.row_label(r) for r in self.shown])
        self.position_axis.set_tokens(position_labels(self.pieces))
        what = "target" if self.colour.currentData() == TARGET else "top token"
        self.plot.setLabel("bottom", "position")
        self.bar.axis.setLabel(f"probability of the {what}")
        self._mark()

    def _mark(self) -> None:
        if self.selected is None or self.selected[0] not in self.shown:
            self.mark.setData([], [])
            return
        y, x = self.shown.index(self.selected[0]), self.selected[1]
        self.mark.setData([x, x + 1, x + 1, x, x], [y, y, y + 1, y + 1, y])

    # --- hover and click -----------------------------------------------------------------
    def cell_top(self, row: int, col: int, k: int) -> list[tuple[str, float]]:
        lens = self.lens
        return [(self.vocab[int(i)], float(p))
                for i, p in zip(lens.top_ids[row, col, :k], lens.top_probs[row, col, :k])]

    def _describe(self, row: int, col: int) -> str:
        where = f"{self.row_label(row)} · {col}: {self.pieces[col]}"
        if self.lens.target_probs is not None:
            where += (f" · {self.vocab[self.lens.target]} "
                      f"{percent(float(self.lens.target_probs[row, col]))}")
        return where

    def _on_hover(self, where) -> None:
        if where is None or self.lens is None:
            self.hover.setText(HINT)
            return
        shown_row, col, _ = where
        row = self.shown[shown_row]
        top = ", ".join(f"{t} {percent(p)}" for t, p in self.cell_top(row, col, 5))
        self.hover.setText(f"{self._describe(row, col)} · top 5: {top}")

    def _on_click(self, _unit: int, _modifiers) -> None:
        if self.lens is None:
            return
        shown_row, col = self.image.last_click
        if 0 <= shown_row < len(self.shown) and 0 <= col < len(self.pieces):
            self.select(self.shown[shown_row], col)

    @Slot(int, int)
    def select(self, row: int, col: int) -> None:
        """Show the top 10 of lens row ``row`` at position ``col``."""
        self.selected = (row, col)
        self._show_top()
        self._mark()

    def _show_top(self) -> None:
        self.top_list.clear()
        if self.selected is None or self.lens is None:
            self.top_title.setText("Click a cell for its top 10.")
            return
        row, col = self.selected
        self.top_title.setText(f"Top 10 at {self._describe(row, col)}:")
        for rank, (text, p) in enumerate(self.cell_top(row, col, 10), 1):
            self.top_list.addItem(f"{rank}. {text}   {percent(p)}")
