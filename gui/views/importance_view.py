"""ImportanceChartView: what is lost when each head is switched off in turn, in the
units of the model's score (accuracy points, or cosine similarity for an encoder)."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from gui.views.labels import TokenAxis

#: The change drawn in full colour; smaller ones fade to grey, so a head whose removal
#: costs 0.006 similarity (0.994 left) is not as red as one that breaks the task.
FULL_CHANGE = {"accuracy": 20.0, "cosine": 0.2}
GREY, RED, BLUE = np.array([138, 138, 138]), np.array([224, 68, 62]), np.array([76, 155, 232])
WORDS = {
    "accuracy": ("accuracy drop (points)",
                 "Accuracy lost when one head is switched off ({mode}), in points"),
    "cosine": ("similarity lost",
               "Similarity to the intact model's embedding lost when one head is switched "
               "off ({mode}): 1 − cosine"),
}


def change_colours(drops: np.ndarray, metric: str) -> list:
    """One brush per bar: grey for no change, red for a loss, blue for a gain, the
    stronger the bigger the change."""
    full = FULL_CHANGE.get(metric, FULL_CHANGE["accuracy"])
    out = []
    for drop in drops:
        t = float(np.clip(abs(drop) / full, 0.0, 1.0)) ** 0.5
        target = RED if drop > 0 else BLUE
        out.append(pg.mkBrush(*(GREY + t * (target - GREY)).astype(int)))
    return out


class ImportanceChartView(QWidget):
    """Owns the "Measure head importance" button and its bar chart."""

    requested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.score_metric = "accuracy"
        self.drops = np.zeros(0)
        self.button = QPushButton("Measure head importance")
        self.button.setToolTip("Switch each head off in turn (all in one batched pass) "
                               "and chart how much of the model's score is lost")
        # A wrapped label, not the plot's own title: that one is cut off when narrow.
        self.caption = QLabel("Press the button: each head is switched off in turn.")
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: #bbb; font-size: 11px;")
        self.axis = TokenAxis("bottom", 7)
        self.axis.set_tokens([])  # no numbers under an empty chart
        self.plot = pg.PlotWidget(axisItems={"bottom": self.axis})
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.setLabel("left", WORDS["accuracy"][0])
        # Plain numbers: "similarity lost (x0.001)" reads as a different unit.
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setMinimumHeight(80)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush="#8a8a8a")
        self.plot.addItem(self.bars)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.caption)
        layout.addWidget(self.plot, 1)
        self.button.clicked.connect(self.requested)

    def show_sweeps(self, baseline: float, sweeps: Sequence, metric: str) -> None:
        """Chart each head's loss: ``baseline`` minus its score, in points for accuracy."""
        self.score_metric = metric if metric in WORDS else "accuracy"
        scale = 100.0 if self.score_metric == "accuracy" else 1.0
        drops, labels = [], []
        for layer, sweep in enumerate(sweeps):
            for unit, score in zip(sweep.units, sweep.score):
                drops.append(scale * (baseline - float(score)))
                labels.append(f"L{layer}H{unit}")
        self.drops = np.array(drops, dtype=float)
        x = np.arange(len(drops)) + 0.5  # bar i is centred in cell i, as the labels are
        self.bars.setOpts(x=x, height=self.drops, width=0.7,
                          brushes=change_colours(self.drops, self.score_metric))
        self.axis.set_tokens(labels)
        axis_words, caption = WORDS[self.score_metric]
        mode = sweeps[0].mode if sweeps else "zero"
        self.plot.setLabel("left", axis_words)
        self.caption.setText(caption.format(mode=mode))
        floor = 5.0 if self.score_metric == "accuracy" else 0.02
        lo = min(0.0, float(self.drops.min(initial=0)))
        self.plot.setYRange(lo, max(float(self.drops.max(initial=0)), floor), padding=0.05)
        self.plot.setXRange(0, max(len(drops), 1), padding=0.01)
