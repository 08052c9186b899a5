"""The charts of a unit page: the histogram of the unit's activation over the dataset,
a bar per class (means, or what switching the unit off does), and its weights as tiles."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRect, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QSizePolicy, QWidget

from core.unit_values import UnitEffect, UnitWeights
from gui.views.unit_colours import columns
from gui.views.imaging import DIVERGING
from gui.views.labels import FitsWidth, TokenAxis

CHART_HEIGHT = 150
BLUE, ORANGE, RED, GREY = "#4c9be8", "#e8894c", "#e0443e", "#8a8a8a"


class _PageChart(pg.PlotWidget):
    """A chart on the scrolling page: it cannot be panned, zoomed or focused, and the
    mouse wheel over it scrolls the page (the scroll area gets the event)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        # Focusable, a chart took the focus from a disabled button and the scroll area
        # jumped to show it.
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt override)
        """Handed to the page's scroll area, which scrolls (the chart does not zoom)."""
        area = self.parentWidget()
        while area is not None and not isinstance(area, QAbstractScrollArea):
            area = area.parentWidget()
        if area is None:
            event.ignore()
            return
        bar = (area.horizontalScrollBar()
               if abs(event.angleDelta().x()) > abs(event.angleDelta().y())
               else area.verticalScrollBar())
        QApplication.sendEvent(bar, event)


class HistogramChart(_PageChart):
    """How often the unit reaches each value over the evaluation set."""

    def __init__(self) -> None:
        super().__init__()
        self.showGrid(y=True, alpha=0.25)
        self.setLabel("left", "examples")
        self.getAxis("left").enableAutoSIPrefix(False)
        self.getAxis("bottom").enableAutoSIPrefix(False)
        self.setFixedHeight(CHART_HEIGHT)
        self.setMinimumWidth(150)
        self.bars = pg.BarGraphItem(x0=[], x1=[], height=[], brush=BLUE, pen=pg.mkPen(None))
        self.mean_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#f5c542", width=1,
                                                               style=Qt.PenStyle.DashLine))
        self.addItem(self.bars)
        self.addItem(self.mean_line)

    def show_counts(self, counts: np.ndarray, edges: np.ndarray, mean: float,
                    what: str) -> None:
        counts = np.asarray(counts, float)
        edges = np.asarray(edges, float)
        self.bars.setOpts(x0=edges[:-1], x1=edges[1:], height=counts, brush=BLUE)
        self.mean_line.setPos(mean)
        self.setLabel("bottom", what)
        lo, hi = float(edges[0]), float(edges[-1])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        self.setXRange(lo, hi, padding=0.02)
        self.setYRange(0, max(float(counts.max(initial=0)), 1.0), padding=0.05)


class GroupChart(_PageChart):
    """One bar per class or group, labelled under the bar (thinned where they crowd)."""

    def __init__(self, left: str) -> None:
        self.axis = TokenAxis("bottom", 7)
        super().__init__(axisItems={"bottom": self.axis})
        self.showGrid(y=True, alpha=0.25)
        self.setLabel("left", left)
        self.getAxis("left").enableAutoSIPrefix(False)
        self.setFixedHeight(CHART_HEIGHT)
        self.setMinimumWidth(150)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.addItem(self.bars)
        self.values = np.zeros(0)

    def show_values(self, values: np.ndarray, names: Sequence[str], brushes: list,
                    left: Optional[str] = None, bottom: str = "") -> None:
        self.values = np.nan_to_num(np.asarray(values, float))
        x = np.arange(len(self.values)) + 0.5
        self.bars.setOpts(x=x, height=self.values, width=0.7, brushes=brushes)
        self.axis.set_tokens(list(names))
        if left:
            self.setLabel("left", left)
        self.setLabel("bottom", bottom)
        lo = min(0.0, float(self.values.min(initial=0)))
        hi = max(0.0, float(self.values.max(initial=0)))
        if hi - lo < 1e-9:
            lo, hi = lo - 1.0, hi + 1.0
        self.setYRange(lo, hi, padding=0.08)
        self.setXRange(0, max(len(self.values), 1), padding=0.01)


def mean_brushes(values: np.ndarray) -> list:
    return [pg.mkBrush(GREY if not np.isfinite(v) else ORANGE if v < 0 else BLUE)
            for v in np.asarray(values, float)]


def effect_brushes(effect: UnitEffect) -> list:
    """Direct weights: blue pushes the class up, orange down. Accuracy change: red a
    loss, blue a gain, grey none."""
    out = []
    for v in np.asarray(effect.values, float):
        if effect.kind == "direct weights":
            out.append(pg.mkBrush(BLUE if v >= 0 else ORANGE))
        else:
            out.append(pg.mkBrush(GREY if abs(v) < 1e-9 else RED if v < 0 else BLUE))
    return out


def effect_axis(effect: UnitEffect) -> str:
    if effect.kind == "direct weights":
        return "weight to class"
    return "change (points)" if "accuracy" in effect.caption else "change"


def short_titles(titles: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """("pool1 ch 0", "pool1 ch 1", …) -> ("pool1 ch ", ("0", "1", …)): small tiles are
    titled by what differs, the shared words go in the caption."""
    titles = tuple(titles)
    if len(titles) < 2:
        return "", titles
    prefix = titles[0]
    for title in titles[1:]:
        while not title.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix[:prefix.rfind(" ") + 1]
    return (prefix, tuple(t[len(prefix):] for t in titles)) if prefix else ("", titles)


class WeightTiles(FitsWidth):
    """A unit's weights as colour tiles (blue negative, red positive, one shared scale),
    titled, laid out to fit the width; token-by-token tiles get token labels."""

    GAP = 6

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.weights: Optional[UnitWeights] = None
        self._images: list[QImage] = []
        self.scale = 1.0
        self.font_small = QFont()
        self.font_small.setPointSize(7)
        self._lut = pg.colormap.get(DIVERGING).getLookupTable(nPts=256)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_weights(self, weights: Optional[UnitWeights]) -> None:
        self.weights = weights
        self.prefix, self.titles = short_titles(weights.titles if weights else ())
        self._images = []
        if weights is not None and weights.images:
            scales = [float(np.abs(img).max()) or 1.0 for img in weights.images]
            self.scale = max(scales)
            for img, own in zip(weights.images, scales):
                # Kernels share a scale (compare them); QK and OV are different things.
                scale = own if self.per_tile() else self.scale
                index = np.clip((np.asarray(img, float) / scale + 1) * 127.5, 0, 255)
                rgb = np.ascontiguousarray(self._lut[index.astype(np.uint8)][..., :3])
                h, w = rgb.shape[:2]
                self._images.append(QImage(rgb.data, w, h, rgb.strides[0],
                                           QImage.Format.Format_RGB888).copy())
        self._fit()
        self.update()

    def per_tile(self) -> bool:
        """Each tile on its own scale (circuits), or one scale for all."""
        return self.weights is not None and self.weights.kind == "circuits"

    def _labelled(self) -> bool:
        w = self.weights
        return w is not None and bool(w.row_labels or w.col_labels)

    def tile_rects(self, width: int) -> list[QRect]:
        """Where each tile's image goes (its title is drawn under it)."""
        w = self.weights
        if w is None or not self._images:
            return []
        n = len(self._images)
        line = QFontMetrics(self.font_small).height()
        margin = 0
        if self._labelled():
            # Big token-by-token matrices: one or two per row, room for labels.
            margin = line + 4
            cols = 1 if width < 520 else min(n, 2)
            side = min((width - (cols - 1) * self.GAP) // cols - margin, 420)
        else:
            biggest = max(max(img.width(), img.height()) for img in self._images)
            least = 44 if biggest <= 5 else 64 if biggest <= 12 else 120
            cols = columns(n, (width + self.GAP) // (least + self.GAP))
            side = min((width - (cols - 1) * self.GAP) // cols, 160 if n > 1 else 200)
        rects = []
        y = row_h = 0
        for i, img in enumerate(self._images):
            aspect = img.height() / max(img.width(), 1)
            tw, th = (side, int(side * aspect)) if aspect <= 1 else (int(side / aspect), side)
            col = i % cols
            if col == 0 and i:
                y, row_h = y + row_h + self.GAP, 0
            x = col * (side + margin + self.GAP) + margin
            rects.append(QRect(x, y + margin, max(tw, 4), max(th, 4)))
            row_h = max(row_h, margin + max(th, 4) + line + 2)
        return rects

    def height_for(self, width: int) -> int:
        rects = self.tile_rects(width)
        if not rects:
            return 0
        line = QFontMetrics(self.font_small).height()
        return max(r.bottom() for r in rects) + line + 6

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        w = self.weights
        if w is None:
            return
        p = QPainter(self)
        p.setFont(self.font_small)
        metrics = QFontMetrics(self.font_small)
        line = metrics.height()
        text = self.palette().text().color()
        for i, rect in enumerate(self.tile_rects(self.width())):
            p.drawImage(QRectF(rect), self._images[i])
            p.setPen(QColor("#555"))
            p.drawRect(rect.adjusted(0, 0, -1, -1))
            title = self.titles[i] if i < len(self.titles) else ""
            p.setPen(text)
            shown = metrics.elidedText(title, Qt.TextElideMode.ElideRight,
                                       max(rect.width() + 10, 30))
            p.drawText(QRect(rect.left() - 5, rect.bottom() + 2, rect.width() + 10, line),
                       Qt.AlignmentFlag.AlignHCenter, shown)
            if self._labelled():
                self._labels(p, rect, self._images[i], metrics)
        p.end()

    def _labels(self, p: QPainter, rect: QRect, img: QImage, metrics: QFontMetrics) -> None:
        w = self.weights
        line = metrics.height()
        rows, cols = w.row_labels, w.col_labels
        cell_h = rect.height() / max(img.height(), 1)
        cell_w = rect.width() / max(img.width(), 1)
        step_r = max(1, int(np.ceil((line - 1) / max(cell_h, 1e-6))))
        widest = max((metrics.horizontalAdvance(t) for t in cols), default=0) + 2
        step_c = max(1, int(np.ceil(widest / max(cell_w, 1e-6))))
        for r, token in enumerate(rows[:img.height()]):
            if r % step_r == 0:
                y = rect.top() + r * cell_h
                p.drawText(QRect(rect.left() - line - 4, int(y), line + 2, int(cell_h) + 1),
                           Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, token)
        for c, token in enumerate(cols[:img.width()]):
            if c % step_c == 0:
                x = rect.left() + c * cell_w
                p.drawText(QRect(int(x) - 4, rect.top() - line - 2, int(cell_w) + 8, line),
                           Qt.AlignmentFlag.AlignHCenter, token)
