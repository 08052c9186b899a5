"""HeadOverviewView: every head of a language model at a glance — heat maps of layer
(rows) × head (columns) for the previous-token, induction and first-token scores and,
once measured, the accuracy lost when each head is switched off alone.

Hover reads out every number of a head; a click asks for that head's attention view.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout,
                               QWidget)

from gui.views.imaging import ValueImageItem
from gui.views.labels import ElidedLabel

SCORE_MAPS = (("previous_token", "previous token"), ("induction", "induction"),
              ("first_token", "first token"))
LOST = "accuracy lost"
HINT = "Hover a cell for its numbers · click it to open that head's attention"
EMPTY = "Scores appear once measured over the evaluation set."


def kv_groups(n_heads: int, group: int) -> list[tuple[int, int, int]]:
    """(first head, last head, key/value head) of each group of query heads that share
    one key/value head (grouped-query attention); one group per head if none share."""
    group = max(1, group)
    return [(start, min(start + group, n_heads) - 1, start // group)
            for start in range(0, n_heads, group)]


def kv_caption(n_heads: int, group: int) -> str:
    """"heads 0–2 share KV 0 · 3–5 share KV 1 …" for the header of the maps."""
    if group <= 1:
        return ""
    parts = [f"{a}–{b} share KV {kv}" for a, b, kv in kv_groups(n_heads, group)]
    return "heads " + " · ".join(parts)


class _Map:
    """One heat map: its plot, image and the values it shows."""

    def __init__(self, layout: pg.GraphicsLayoutWidget, column: int, title: str,
                 on_click, on_hover) -> None:
        self.plot = pg.PlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.setTitle(title, size="9pt")
        self.plot.showAxis("top")
        for axis in ("left", "bottom", "top"):
            self.plot.getAxis(axis).setStyle(tickFont=_small_font(), tickLength=-3)
        self.image = ValueImageItem(column, on_click, on_hover)
        self.plot.addItem(self.image)
        self.values = np.zeros((1, 1))
        self._lines: list = []

    def show(self, values: np.ndarray, levels: tuple[float, float], cmap: str,
             group: int) -> None:
        self.values = values
        self.image.values = values.astype(np.float32)
        lut = pg.colormap.get(cmap).getLookupTable(nPts=256)
        self.image.setImage(np.nan_to_num(values.astype(np.float32)), levels=levels, lut=lut)
        n_layers, n_heads = values.shape
        self.plot.getViewBox().setRange(xRange=(0, n_heads), yRange=(0, n_layers),
                                        padding=0)
        step = 5 if n_layers > 12 else 1
        self.plot.getAxis("left").setTicks(
            [[(i + 0.5, str(i)) for i in range(0, n_layers, step)],
             [(i + 0.5, "") for i in range(n_layers)]])
        self.plot.getAxis("bottom").setTicks([[(h + 0.5, str(h)) for h in range(n_heads)]])
        self.plot.getAxis("top").setTicks(
            [[((a + b + 1) / 2, f"KV {kv}") for a, b, kv in kv_groups(n_heads, group)]]
            if group > 1 else [[]])
        for line in self._lines:
            self.plot.removeItem(line)
        self._lines = []
        if group > 1:  # where the key/value groups meet
            for a, _b, _kv in kv_groups(n_heads, group)[1:]:
                line = pg.InfiniteLine(a, angle=90, pen=pg.mkPen("#ffffff", width=1.5))
                self.plot.addItem(line)
                self._lines.append(line)


def _small_font():
    from PySide6.QtGui import QFont

    font = QFont()
    font.setPointSize(8)
    return font


class HeadOverviewView(QWidget):
    """The overview, its task chooser and the "Measure head importance" button.

    ``head_clicked(layer, head)``: the attention layer (``block3.attn``) and head
    clicked; ``task_chosen(name)``; ``importance_requested()``.
    """

    head_clicked = Signal(str, int)
    task_chosen = Signal(str)
    importance_requested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.scores = None
        self.lost: Optional[np.ndarray] = None     # (L, H) points of accuracy lost
        self.baseline: Optional[float] = None
        self.score_metric = "accuracy"
        self.group = 1
        self._sites: tuple[str, ...] = ()
        self._build()

    def _build(self) -> None:
        self.task_box = QComboBox()
        self.task_box.setToolTip("The evaluation set the accuracy panel, the head scores "
                                 "and head importance use")
        self.task_label = QLabel("Evaluate on:")
        self.button = QPushButton("Measure head importance")
        self.button.setToolTip("Switch each head off alone (zero or mean, as in the "
                               "ablation panel) and map the accuracy lost")
        self.caption = ElidedLabel(EMPTY)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.task_label)
        top.addWidget(self.task_box)
        top.addWidget(self.button)
        top.addWidget(self.caption, 1)
        self.kv_label = QLabel("")
        self.kv_label.setStyleSheet("color: #888;")
        self.grid = pg.GraphicsLayoutWidget()
        self.grid.ci.layout.setSpacing(6)
        self.maps = [_Map(self.grid, i, title, self._on_click, self._hover(i))
                     for i, (_key, title) in enumerate(SCORE_MAPS + ((None, LOST),))]
        self.maps[0].plot.setLabel("left", "layer")
        for view in self.maps:
            view.plot.setLabel("bottom", "head")
        self.score_bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("inferno"),
                                         interactive=False, width=10)
        self.lost_bar = pg.ColorBarItem(values=(-1, 1), colorMap=pg.colormap.get("CET-D1"),
                                        interactive=False, width=10)
        self._columns = 0
        self._reflow()
        self.hover = ElidedLabel(HINT)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.kv_label)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.hover)
        self.button.clicked.connect(self.importance_requested)
        self.task_box.activated.connect(
            lambda i: self.task_chosen.emit(self.task_box.itemData(i)))
        self.set_tasks((), "")

    def _reflow(self) -> None:
        """Four maps in a row when the dock is wide, two by two when it is tall (a tab
        beside the model tree in a short window)."""
        columns = 4 if self.grid.width() >= 1.2 * self.grid.height() else 2
        if columns == self._columns:
            return
        self._columns = columns
        layout = self.grid.ci
        for item in [v.plot for v in self.maps] + [self.score_bar, self.lost_bar]:
            if item.scene() is not None:
                layout.removeItem(item)
        if columns == 4:
            places = [(0, 0), (0, 1), (0, 2), (0, 4)]
            bars = [(0, 3), (0, 5)]
        else:
            places = [(0, 0), (0, 1), (1, 0), (1, 1)]
            bars = [(0, 2), (1, 2)]
        for view, (r, c) in zip(self.maps, places):
            layout.addItem(view.plot, row=r, col=c)
        for bar, (r, c) in zip((self.score_bar, self.lost_bar), bars):
            layout.addItem(bar, row=r, col=c)
        axis = self.maps[2].plot.getAxis("left")
        axis.setLabel("layer")
        axis.showLabel(columns == 2)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._reflow()

    # --- data ---------------------------------------------------------------------------
    def set_tasks(self, tasks: Sequence, current: str) -> None:
        """The tasks to choose from (``core.lm_values.LmTask``), ``current`` selected."""
        self.task_box.blockSignals(True)
        self.task_box.clear()
        for task in tasks:
            self.task_box.addItem(task.name, task.name)
            self.task_box.setItemData(self.task_box.count() - 1, task.description,
                                      Qt.ItemDataRole.ToolTipRole)
        index = self.task_box.findData(current)
        if index >= 0:
            self.task_box.setCurrentIndex(index)
        self.task_box.blockSignals(False)
        for widget in (self.task_box, self.task_label):
            widget.setVisible(bool(tasks))

    def current_task(self) -> str:
        return self.task_box.currentData() or ""

    def set_group(self, group: int) -> None:
        """Query heads per key/value head (1: none share)."""
        self.group = group

    def set_scores(self, scores) -> None:
        """``core.analysis.attention.HeadScores`` of every layer."""
        self.scores = scores
        self._sites = tuple(scores.sites)
        n_heads = scores.previous_token.shape[1]
        self.kv_label.setText(kv_caption(n_heads, self.group))
        self.kv_label.setVisible(self.group > 1)
        for (key, _title), view in zip(SCORE_MAPS, self.maps):
            view.show(np.asarray(getattr(scores, key), np.float64), (0.0, 1.0), "inferno",
                      self.group)
        self._show_lost()
        self.caption.setText(f"{len(self._sites)} layers × {n_heads} heads · mean "
                             "attention weight over the evaluation set")

    def set_importance(self, sweeps: Sequence, metric: str = "accuracy") -> None:
        """One ``core.analysis.evaluate.Sweep`` per attention layer."""
        self.score_metric = metric
        by_site = {s.site.rpartition(".")[0]: s for s in sweeps}
        if not sweeps:
            return
        self.baseline = float(sweeps[0].baseline_score)
        layers = [site.rpartition(".")[0] for site in self._sites] or list(by_site)
        n_heads = max(len(s.score) for s in sweeps)
        lost = np.full((len(layers), n_heads), np.nan)
        for i, layer in enumerate(layers):
            sweep = by_site.get(layer)
            if sweep is not None:
                lost[i, :len(sweep.score)] = 100 * (self.baseline - np.asarray(sweep.score))
        self.lost = lost
        self._show_lost()
        mode = sweeps[0].mode
        worst = np.unravel_index(np.nanargmax(lost), lost.shape)
        self.caption.setText(f"{mode} ablation · intact {100 * self.baseline:.1f}% · "
                             f"most needed: L{worst[0]} H{worst[1]} "
                             f"(off: {lost[worst]:.1f} points lost)")

    def clear_importance(self) -> None:
        self.lost, self.baseline = None, None
        self._show_lost()

    def clear(self) -> None:
        self.scores, self._sites = None, ()
        self.clear_importance()
        for view in self.maps:
            view.image.clear()
        self.caption.setText(EMPTY)

    def _show_lost(self) -> None:
        view = self.maps[-1]
        view.plot.setTitle(f"{LOST} (points)" if self.lost is not None
                           else f"{LOST}: press Measure", size="9pt")
        if self.lost is None:
            view.image.clear()
            view.values = np.zeros((1, 1))
            if self.scores is not None:  # the same empty grid as its neighbours
                view.show(np.full(self.scores.previous_token.shape, np.nan), (0.0, 1.0),
                          "CET-D1", self.group)
                view.image.clear()
            return
        span = max(float(np.nanmax(np.abs(self.lost))), 0.5)
        view.show(self.lost, (-span, span), "CET-D1", self.group)
        self.lost_bar.setLevels((-span, span))

    # --- interaction --------------------------------------------------------------------
    def numbers(self, layer: int, head: int) -> str:
        """The read-out of one head."""
        parts = [f"L{layer} H{head}"]
        if self.group > 1:
            parts[0] += f" (KV {head // self.group})"
        if self.scores is not None:
            parts.append(f"previous token {self.scores.previous_token[layer, head]:.2f} · "
                         f"induction {self.scores.induction[layer, head]:.2f} · "
                         f"first token {self.scores.first_token[layer, head]:.2f}")
        if self.lost is not None and not np.isnan(self.lost[layer, head]):
            left = 100 * self.baseline - self.lost[layer, head]
            parts.append(f"off: {left:.1f}% ({-self.lost[layer, head]:+.1f} points)")
        return " · ".join(parts)

    def _hover(self, _column: int):
        def on_hover(where) -> None:
            if where is not None:
                row, col, _value = where
                self.hover.setText(self.numbers(row, col))
        return on_hover

    def _on_click(self, column: int, _modifiers) -> None:
        row, col = self.maps[column].image.last_click
        self.click(row, col)

    def click(self, layer: int, head: int) -> None:
        if 0 <= layer < len(self._sites):
            self.head_clicked.emit(self._sites[layer].rpartition(".")[0], head)
