"""AccuracyPanel: baseline vs. ablated accuracy over the evaluation split, per class."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.analysis.evaluate import EvalResult
from gui.views.labels import TokenAxis


class AccuracyPanel(QWidget):
    """Owns the accuracy read-out and the per-class chart."""

    updated = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.result: Optional[EvalResult] = None
        #: What the answers are scored on, in words: set by ``set_dataset``.
        self.dataset = ""
        self.builtin = True
        self.headline = QLabel("Accuracy: computing…")
        self.headline.setStyleSheet("font-size: 15px; font-weight: bold;")
        self.headline.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #e0a030;")
        # Group names at bar centres, thinned to the ones that fit (40 sentences too).
        self.groups_axis = TokenAxis("bottom", 8)
        self.plot = pg.PlotWidget(axisItems={"bottom": self.groups_axis})
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setLabel("left", "accuracy")
        # Small enough that the side panel fits a 640-pixel-high window (issue #12).
        self.plot.setMinimumHeight(90)
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

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        # Modest, so the ablation controls below it get the room they need first.
        return QSize(300, 250)

    def set_dataset(self, name: str, builtin: bool) -> None:
        """Name what the answers are scored on: the built-in test set or the user's own
        data (their file name), instead of a generic "answers". Another model or data
        makes the last result meaningless: it is dropped, so a cancelled evaluation
        never shows the previous data's accuracy as this one's (issue #10)."""
        self.dataset, self.builtin = name, builtin
        self.result = None
        self.headline.setText(f"Not evaluated yet on {name}")
        self.warning.setText("")

    def show_result(self, result: EvalResult) -> None:
        self.result = result
        self.headline.setText(self._headline(result))
        self.detail.setText(self._detail(result))
        # Which layers were recomputed is a speed detail: a tooltip, not the read-out.
        self.detail.setToolTip(f"Only the layers after {result.resumed_from} were "
                               "recomputed; the ones before it cannot change."
                               if result.resumed_from else "")
        self.warning.setText(self._warning(result))
        self.warning.setVisible(bool(self.warning.text()))
        x = np.arange(len(result.group_names)) + 0.5  # group i is centred in cell i
        self.base.setOpts(x=x - 0.2, height=np.nan_to_num(result.baseline_per_group),
                          width=0.38)
        colours = ["#e0443e" if n < b - 1e-9 else "#4c9be8"
                   for n, b in zip(result.per_group, result.baseline_per_group)]
        self.now.setOpts(x=x + 0.2, height=np.nan_to_num(result.per_group), width=0.38,
                         brushes=colours)
        self.groups_axis.set_tokens(result.group_names)
        self.plot.setXRange(0, max(len(x), 1), padding=0.02)
        self.plot.setLabel("left", "similarity" if result.metric == "cosine" else "accuracy")
        self.plot.setLabel("bottom", result.group_label)
        self.set_stale(False)
        self.updated.emit()

    def _detail(self, result: EvalResult) -> str:
        what = "sentences" if result.metric == "cosine" else "answers"
        if self.dataset:
            source = (f"the built-in test set ({self.dataset})" if self.builtin
                      else f"your data ({self.dataset})")
            scored = f"{result.n} {what} from {source}"
        else:
            scored = f"Scored on {result.n} {what}"
        return (f"{scored} · loss {result.baseline_loss:.3f} → {result.loss:.3f}\n"
                f"Per {result.group_label}: grey = intact model, blue = now, "
                "red = dropped.")

    @staticmethod
    def _warning(result: EvalResult) -> str:
        lines = []
        for text in getattr(result, "dead", ()):
            what, _, activation = text.partition(" never fire after ")
            after = f" ({activation})" if activation else ""
            lines.append(f"Switching off {what} cannot change anything: it never fires. "
                         f"After its activation function{after} it is 0 on every example, "
                         "so the model already works without it.")
        if result.unchanged:
            lines.append("No effect: " + "; ".join(result.unchanged) +
                         " — the unit was already at that value on every input.")
        return "\n".join(lines)

    @staticmethod
    def _headline(result: EvalResult) -> str:
        if result.metric == "cosine":
            if not result.ablations:
                return "Embedding similarity 1.000 (intact model)"
            return (f"Embedding similarity 1.000 → {result.score:.3f} "
                    f"(cosine to the intact model's, mean over sentences)")
        if not result.ablations:
            return f"Accuracy {100 * result.score:.1f}% (baseline, nothing switched off)"
        change = f"{100 * result.delta:+.1f} points"
        if getattr(result, "dead", ()) and abs(result.delta) < 5e-4:
            change = "no change, as expected: see below"
        return (f"Accuracy {100 * result.baseline_score:.1f}% → "
                f"{100 * result.score:.1f}% ({change})")

    def show_cancelled(self) -> None:
        self.set_stale(False)
        self.detail.setText(
            "Evaluation cancelled — showing the last finished result." if self.result else
            "Evaluation cancelled: switch a unit off or on (or Reset) to evaluate again.")

    def set_stale(self, stale: bool) -> None:
        self.plot.setBackground("#2a2a3a" if stale else "k")
        if stale:
            self.detail.setText("Evaluating…")
        elif self.detail.text() == "Evaluating…":
            # A failed evaluation ends here without a result: the last one is still
            # what the chart shows (issue #15, a live model's forward that raised).
            self.detail.setText(self._detail(self.result) if self.result else
                                "Not evaluated: see the message above.")

    def current(self) -> Optional[float]:
        return None if self.result is None else self.result.score

    def baseline(self) -> Optional[float]:
        return None if self.result is None else self.result.baseline_score
