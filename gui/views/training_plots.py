"""TrainingPlots: the live plots of a lesson's training — loss, the data with the
model's fit, the parameters and their gradients (values for tiny models, histograms per
layer for the network, as TensorBoard draws them)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGridLayout, QWidget

from core.lessons.snapshot import Snapshot

BLUE, ORANGE, GREEN, GREY = "#4c9be8", "#e8894c", "#4cc38a", "#9a9a9a"


def _plot(title: str, left: str = "", bottom: str = "") -> pg.PlotWidget:
    plot = pg.PlotWidget(title=title)
    plot.setMenuEnabled(False)
    for axis in ("left", "bottom"):
        plot.getAxis(axis).enableAutoSIPrefix(False)  # "x0.001" confuses newcomers
    plot.showGrid(x=True, y=True, alpha=0.25)
    if left:
        plot.setLabel("left", left)
    if bottom:
        plot.setLabel("bottom", bottom)
    return plot


class TrainingPlots(QWidget):
    """Owns the four plots; ``show_snapshot`` redraws them for any trainer."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.loss = _plot("loss", "loss", "step")
        self.data = _plot("data and model")
        self.params = _plot("parameters (blue) and their gradients (orange)")
        self.extra = _plot("parameters over the steps", bottom="step")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        for i, plot in enumerate((self.loss, self.data, self.params, self.extra)):
            grid.addWidget(plot, i // 2, i % 2)
        self.loss_curve = self.loss.plot(pen=pg.mkPen(BLUE, width=2))
        # One legend per plot: clearing a plot also removes its legend entries.
        self.params.addLegend(offset=(5, 5))
        self.extra.addLegend(offset=(5, 5))
        self.trainer = ""

    def reset(self, trainer: str) -> None:
        self.trainer = trainer
        for plot in (self.data, self.params, self.extra):
            plot.clear()

    def show_snapshot(self, snap: Snapshot) -> None:
        if snap.trainer != self.trainer or snap.step == 0:
            self.reset(snap.trainer)
        self.loss_curve.setData(np.arange(len(snap.losses)), snap.losses)
        if snap.trainer == "mlp":
            self._mlp(snap)
        else:
            self._data(snap)
            self._small_params(snap)

    # --- linear and logistic regression ------------------------------------------------
    def _data(self, snap: Snapshot) -> None:
        self.data.clear()
        d = snap.data
        if snap.trainer == "linear":
            self.data.setTitle("the points and the fitted line y = w·x + b")
            self.data.plot(d["x"], d["y"], pen=None, symbol="o", symbolSize=6,
                           symbolBrush=GREY)
            self.data.plot(d["line_x"], d["line_y"], pen=pg.mkPen(BLUE, width=3))
            return
        self.data.setTitle("P(class 1) and the decision boundary (0.5)")
        x0, y0, x1, y1 = d["extent"]
        image = pg.ImageItem(d["prob"].astype(np.float32), axisOrder="row-major")
        image.setLookupTable(pg.colormap.get("CET-D1").getLookupTable(nPts=256))
        image.setLevels((0, 1))
        image.setRect(x0, y0, x1 - x0, y1 - y0)
        image.setOpacity(0.55)  # the points must stay readable on top
        self.data.addItem(image)
        boundary = pg.IsocurveItem(level=0.5, pen=pg.mkPen("w", width=2))
        boundary.setParentItem(image)
        boundary.setData(d["prob"].T.astype(np.float32))
        for cls, colour, edge in ((0, "#ffd84d", "k"), (1, "#111111", "w")):
            pts = d["points"][d["labels"] == cls]
            self.data.plot(pts[:, 0], pts[:, 1], pen=None, symbol="o", symbolSize=7,
                           symbolBrush=colour, symbolPen=edge)

    def _small_params(self, snap: Snapshot) -> None:
        names, values, grads = [], [], []
        for name, arr in snap.params.items():
            for i, v in enumerate(arr.ravel()):
                names.append(name[0] if arr.size == 1 else f"{name[0]}{i + 1}")
                values.append(float(v))
                grads.append(float(snap.grads[name].ravel()[i]))
        x = np.arange(len(names))
        self.params.clear()
        self.params.addItem(pg.BarGraphItem(x=x - 0.18, height=values, width=0.34, brush=BLUE))
        self.params.addItem(pg.BarGraphItem(x=x + 0.18, height=grads, width=0.34, brush=ORANGE))
        for i, (v, g) in enumerate(zip(values, grads)):
            label = pg.TextItem(f"{v:+.3f}\n∇ {g:+.3f}", color="#dddddd", anchor=(0.5, 1))
            label.setPos(i, max(v, g, 0))
            self.params.addItem(label)
        self.params.getAxis("bottom").setTicks([list(zip(x, names))])
        self.params.setXRange(-0.6, len(names) - 0.4, padding=0)
        lo, hi = min(values + grads + [0.0]), max(values + grads + [0.0])
        self.params.setYRange(lo - 0.1 * (hi - lo), hi + 0.3 * (hi - lo or 1.0), padding=0)
        history = snap.data["history"]
        self.extra.clear()
        steps = np.arange(len(history))
        for i, name in enumerate(names):
            self.extra.plot(steps, history[:, i], name=name,
                            pen=pg.mkPen((BLUE, GREEN, "#c678dd")[i % 3], width=2))

    # --- the one-hidden-layer network --------------------------------------------------
    def _mlp(self, snap: Snapshot) -> None:
        d = snap.data
        self.data.clear()
        hidden = d["hidden"]
        self.data.setTitle(f"hidden neurons on held-out digit {d['sample']} (a {d['label']}); "
                           f"predicted {int(np.argmax(d['probs']))}")
        self.data.addItem(pg.BarGraphItem(x=np.arange(len(hidden)), height=hidden, width=0.8,
                                          brush=BLUE))
        self.data.setLabel("bottom", "hidden neuron")
        self.data.setXRange(-0.6, len(hidden) - 0.4, padding=0)
        self._histograms(self.params, snap.params, "weights per layer")
        self._histograms(self.extra, snap.grads, "gradients per layer")

    @staticmethod
    def _histograms(plot: pg.PlotWidget, arrays: dict, title: str) -> None:
        plot.clear()
        plot.setTitle(title)
        plot.setLabel("bottom", "value")
        plot.setLabel("left", "share of the layer's numbers")
        names = ("fc1.weight", "fc2.weight")
        # One range for both layers, so their spreads can be compared by eye.
        spread = max(float(np.abs(arrays[n]).max()) for n in names) or 1.0
        for colour, name in zip((BLUE, ORANGE), names):
            values = arrays[name].ravel()
            counts, edges = np.histogram(values, bins=40, range=(-spread, spread))
            share = counts / max(counts.sum(), 1)
            plot.plot(edges, share, stepMode="center", fillLevel=0,
                      brush=pg.mkBrush(colour + "60"), pen=pg.mkPen(colour), name=name)
