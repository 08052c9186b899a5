"""AccuracyPanel: baseline vs. ablated accuracy over the evaluation split, per class."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.analysis.evaluate import EvalResult


class AccuracyPanel(QWidget):
    """Owns the accuracy read-out and the per-class chart."""

    updated = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.result: Optional[EvalResult] = None
        self.headline = QLabel("Accuracy: computing…")
        self.headline.setStyleSheet("font-size: 15px; font-weight: bold;")
        self.headline.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #e0a030;")
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setLabel("left", "accuracy")
        self.plot.setMinimumHeight(160)
        self.base = pg.BarGraphItem(x=[], height=[], width=0.38, brush="#888888", name="baseline")
        self.now = pg.BarGraphItem(x=[], height=[], width=0.38, brush="#4c9be8", name="now")
        self.plot.addItem(self.base)
        self.plot.addItem(self.now)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.headline)
        layout.addWidget(self.detail)
        layout.addWidget(self.warning)
        layout.addWidget(self.plot, 1)

    def show_result(self, result: EvalResult) -> None:
        self.result = result
        self.headline.setText(self._headline(result))
        how = f" · re-ran after {result.resumed_from}" if result.resumed_from else ""
        self.detail.setText(
            f"{result.n} held-out {'sentences' if result.metric == 'cosine' else 'answers'} · loss {result.baseline_loss:.3f} → "
            f"{result.loss:.3f}{how}\nPer {result.group_label}: grey = intact model, "
            "blue = now, red = dropped.")
        self.warning.setText("No effect: " + "; ".join(result.unchanged) +
                             " — the unit was already at that value on every input."
                             if result.unchanged else "")
        x = np.arange(len(result.group_names))
        self.base.setOpts(x=x - 0.2, height=np.nan_to_num(result.baseline_per_group),
                          width=0.38)
        colours = ["#e0443e" if n < b - 1e-9 else "#4c9be8"
                   for n, b in zip(result.per_group, result.baseline_per_group)]
        self.now.setOpts(x=x + 0.2, height=np.nan_to_num(result.per_group), width=0.38,
                         brushes=colours)
        step = max(1, len(x) // 15)  # keep labels legible when there are many groups
        self.plot.getAxis("bottom").setTicks([list(zip(x[::step], result.group_names[::step]))])
        self.plot.setLabel("left", "similarity" if result.metric == "cosine" else "accuracy")
        self.plot.setLabel("bottom", result.group_label)
        self.set_stale(False)
        self.updated.emit()

    @staticmethod
    def _headline(result: EvalResult) -> str:
        if result.metric == "cosine":
            if not result.ablations:
                return "Embedding similarity 1.000 (intact model)"
            return (f"Embedding similarity 1.000 → {result.score:.3f} "
                    f"(cosine to the intact model's, mean over sentences)")
        if not result.ablations:
            return f"Accuracy {100 * result.score:.1f}% (baseline, nothing switched off)"
        return (f"Accuracy {100 * result.baseline_score:.1f}% → "
                f"{100 * result.score:.1f}% ({100 * result.delta:+.1f} points)")

    def show_cancelled(self) -> None:
        self.set_stale(False)
        self.detail.setText("Evaluation cancelled — showing the last finished result.")

    def set_stale(self, stale: bool) -> None:
        self.plot.setBackground("#2a2a3a" if stale else "k")
        if stale:
            self.detail.setText("Evaluating…")

    def current(self) -> Optional[float]:
        return None if self.result is None else self.result.score

    def baseline(self) -> Optional[float]:
        return None if self.result is None else self.result.baseline_score
