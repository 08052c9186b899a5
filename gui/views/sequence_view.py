"""SequenceView: a (tokens x features) activation as one heat map, tokens labelled."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.views.channel_grid import TOGGLE_MODIFIERS
from gui.views.imaging import DIVERGING, ValueImageItem, levels_for
from gui.views.labels import ElidedLabel, TokenAxis
from gui.views.unit_menu import UnitPageRequests

#: A language model's residual stream has a few features (and its first token) hundreds
#: of times larger than the rest (SmolLM2's block4: ±647 against a 99th percentile of
#: 10): scaled to them, every other value is white. Where the largest value exceeds this
#: many times the 99th percentile, the colours saturate there instead.
OUTLIER_RATIO = 4.0


def robust_levels(values: np.ndarray) -> tuple[tuple[float, float], bool]:
    """Symmetric colour levels, and whether a few outliers were left saturated."""
    lo, hi = levels_for(values, DIVERGING)
    typical = float(np.percentile(np.abs(values), 99)) if values.size else 0.0
    if typical > 0 and hi > OUTLIER_RATIO * typical:
        return (-typical, typical), True
    return (lo, hi), False


HINT = ("Ctrl+click (or Shift+click) a column to switch that feature off · double-click: "
        "what does it do?")


class SequenceView(QWidget):
    """Owns the heat map of one sequence-shaped layer (embeddings, residual, logits)."""

    unit_toggled = Signal(str, int)
    #: Double-click or the context menu: open the feature's page (site, feature).
    unit_page_requested = Signal(str, int)
    drawn = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.site = ""
        self.values = np.zeros((1, 1), np.float32)
        self.tokens: list[str] = []
        self.ablated: frozenset[int] = frozenset()
        self.title = ElidedLabel("")
        self.title.setStyleSheet("font-weight: bold;")
        self.token_axis = TokenAxis("left")
        self.plot = pg.PlotWidget(axisItems={"left": self.token_axis})
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("left", "token")
        self.image = ValueImageItem(0, self._on_click, self._on_hover)
        self.plot.addItem(self.image)
        self.bar = pg.ColorBarItem(interactive=False, width=12, rounding=1e-3,
                                colorMap=pg.colormap.get(DIVERGING))
        self.bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        self.off = pg.ScatterPlotItem(symbol="s", size=6, pen=None, brush="#ff3b30")
        self.plot.addItem(self.off)
        self.hover = ElidedLabel(HINT)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hover)
        self.page_requests = UnitPageRequests(
            self.plot.scene(), self._feature_at,
            lambda unit: self.unit_page_requested.emit(self.site, unit), self)

    def _feature_at(self, scene_pos) -> Optional[int]:
        """The feature (column) drawn at ``scene_pos``, or ``None`` off the map."""
        if not self.image.sceneBoundingRect().contains(scene_pos):
            return None
        col = int(self.image.mapFromScene(scene_pos).x())
        return col if 0 <= col < self.values.shape[1] else None

    def show_sequence(self, site: str, values: np.ndarray, tokens: Sequence[str],
                      ablated: frozenset[int], feature_names: Sequence[str] = ()) -> None:
        """Draw ``values`` (T, F) float32; ``feature_names`` label columns if given."""
        self.site, self.tokens, self.ablated = site, list(tokens), frozenset(ablated)
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.image.values = self.values
        self.hover.setText(HINT)  # the old read-out named another layer or old values
        levels, clipped = robust_levels(self.values)
        self.image.setImage(self.values, levels=levels)
        self.bar.setLevels(levels)
        self.token_axis.set_tokens(self.tokens)
        names = list(feature_names)
        self.plot.getAxis("bottom").setTicks([list(enumerate(names))] if names else None)
        self.plot.setLabel("bottom", "class" if names else "feature")
        off = sorted(self.ablated)
        self.off.setData(x=np.array(off) + 0.5, y=np.full(len(off), -0.6))
        self.plot.getViewBox().enableAutoRange(enable=True)
        t, f = self.values.shape
        largest = float(np.abs(self.values).max()) if self.values.size else 0.0
        saturated = (f" · colours saturate at ±{levels[1]:.3g} (largest {largest:.3g})"
                     if clipped else "")
        self.title.setText(f"{site} — {t} tokens × {f} features · {len(off)} switched off"
                           f"{saturated}")
        self.drawn.emit(site)

    def numbers(self) -> tuple[tuple[str, ...], list]:
        t, f = self.values.shape
        rows = [(self.site, i, self.tokens[i] if i < len(self.tokens) else "", j,
                 f"{self.values[i, j]:.6g}") for i in range(t) for j in range(f)]
        return ("layer", "position", "token", "feature", "value"), rows

    def set_stale(self, stale: bool) -> None:
        self.plot.setBackground("#2a2a3a" if stale else "k")

    def _on_click(self, _unit: int, modifiers) -> None:
        col = self.image.last_click[1]
        if modifiers & TOGGLE_MODIFIERS and 0 <= col < self.values.shape[1]:
            self.unit_toggled.emit(self.site, col)

    def _on_hover(self, where) -> None:
        if where is None:
            return
        row, col, value = where
        token = self.tokens[row] if row < len(self.tokens) else "?"
        state = " (switched off)" if col in self.ablated else ""
        self.hover.setText(f"{self.site} · token {row} '{token}' · feature {col}{state} · "
                           f"value {value:.4g}")
