"""PredictionView: class probabilities of the current input, now vs. without ablations."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gui.views.labels import TokenAxis


class ClassAxis(TokenAxis):
    """Class names under their bars: shortened, and every k-th one where a narrow
    panel has no room for all (long names ran into one another, "cadogcar")."""

    def set_tokens(self, tokens) -> None:
        # Digits 0..9 read apart with no more space than their glyphs' own (all ten fit
        # in the default window); words need a space between them.
        self.gap = 0 if all(len(str(t)) <= 2 for t in tokens) else 6
        super().set_tokens(tokens)


class PredictionView(QWidget):
    """Owns the probability bars of one input."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.headline = QLabel("Prediction: —")
        self.headline.setStyleSheet("font-size: 15px; font-weight: bold;")
        # Wrapped, not one line: the details must not widen the window, and they sit on
        # a smaller second line so a narrow panel keeps its chart.
        self.headline.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.detail.setStyleSheet("color: #bbb; font-size: 11px;")
        self.classes_axis = ClassAxis("bottom")
        self.plot = pg.PlotWidget(axisItems={"bottom": self.classes_axis})
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setLabel("left", "probability")
        self.plot.setMinimumHeight(120)
        self.base = pg.BarGraphItem(x=[], height=[], width=0.8, brush=pg.mkBrush(120, 120, 120, 90))
        self.now = pg.BarGraphItem(x=[], height=[], width=0.5, brush=pg.mkBrush("#4c9be8"))
        self.plot.addItem(self.base)
        self.plot.addItem(self.now)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.headline)
        layout.addWidget(self.detail)
        layout.addWidget(self.plot, 1)

    def show_prediction(self, probs: np.ndarray, baseline: np.ndarray,
                        class_names: tuple[str, ...], label: Optional[int]) -> None:
        """``probs``/``baseline`` (K,) sum to 1; ``label`` is the true class if known."""
        x = np.arange(len(probs)) + 0.5  # class i is centred in cell i, as the axis says
        pred = int(np.argmax(probs))
        colours = ["#4cc38a" if i == label else "#4c9be8" for i in range(len(probs))]
        if label is not None and pred != label:
            colours[pred] = "#e0443e"
        self.base.setOpts(x=x, height=baseline, width=0.8)
        self.now.setOpts(x=x, height=probs, width=0.5, brushes=colours)
        self.classes_axis.set_tokens(class_names)
        self.plot.setXRange(0, max(len(x), 1), padding=0)
        verdict = "" if label is None else (" ✓" if pred == label else " ✗")
        changed = int(np.argmax(baseline)) != pred
        details = [] if label is None else [f"true label {class_names[label]}"]
        if changed:
            details.append(f"was {class_names[int(np.argmax(baseline))]} before ablation")
        self.headline.setText(f"Prediction: {class_names[pred]} ({probs[pred]:.0%}){verdict}")
        self.detail.setText(" · ".join(details))
        self.detail.setVisible(bool(details))
