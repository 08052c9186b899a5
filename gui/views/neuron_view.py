"""NeuronView: one bar per neuron of a dense layer, ablated neurons greyed and crossed,
neurons that never fire hatched grey."""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from gui.views.channel_grid import (DEAD_BRUSH, DEAD_COLOUR, DEAD_WHY, TOGGLE_MODIFIERS,
                                    dead_note)
from gui.views.labels import ElidedLabel
from gui.views.unit_menu import UnitPageRequests

ON_BRUSH = pg.mkBrush("#4c9be8")
NEG_BRUSH = pg.mkBrush("#e8894c")
OFF_BRUSH = pg.mkBrush("#666666")
HINT = ("Ctrl+click (or Shift+click) a bar to switch that neuron off · double-click: what "
        "does it do?")


class NeuronView(QWidget):
    """Owns the bar chart of a vector-valued layer (Linear, Flatten, ReLU after Linear)."""

    unit_toggled = Signal(str, int)
    #: Double-click or the context menu: open the neuron's page (site, unit).
    unit_page_requested = Signal(str, int)
    drawn = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.site = ""
        self.values = np.zeros(0, np.float32)
        self.ablated: frozenset[int] = frozenset()
        self.modes: dict[int, str] = {}
        self.dead: frozenset[int] = frozenset()
        self.n_examples = 0
        self.labels: tuple[str, ...] = ()
        self.title = ElidedLabel("")
        self.title.setStyleSheet("font-weight: bold;")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {DEAD_COLOUR}; font-size: 11px;")
        self.note.setToolTip(DEAD_WHY)
        self.note.hide()
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.showGrid(y=True, alpha=0.3)
        self.plot.setLabel("left", "activation")
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        # A dead neuron's bar has no height (always 0): a full-height hatched band
        # behind it says "never fires" where a bar would be.
        self.dead_bands = pg.BarGraphItem(x=[], height=[], width=0.8, brush=DEAD_BRUSH,
                                          pen=pg.mkPen(None))
        # Crosses sit where the switched-off neuron's value is drawn: 0 for "zero", its
        # dataset mean for "mean" (the capture is taken with the ablation applied).
        self.crosses = pg.ScatterPlotItem(symbol="x", size=10, pen=pg.mkPen("#ff6b63", width=2),
                                          brush=None)
        self.plot.addItem(self.dead_bands)
        self.plot.addItem(self.bars)
        self.plot.addItem(self.crosses)
        self.hover = ElidedLabel(HINT)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hover)
        self.plot.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self.plot.scene().sigMouseMoved.connect(self._on_scene_moved)
        self.page_requests = UnitPageRequests(
            self.plot.scene(), self._index_at,
            lambda unit: self.unit_page_requested.emit(self.site, unit), self)

    def show_neurons(self, site: str, values: np.ndarray, ablated: frozenset[int],
                     labels: tuple[str, ...] = (), dead: tuple[int, ...] = (),
                     modes: Optional[dict[int, str]] = None, n_examples: int = 0) -> None:
        """Draw ``values`` (F,) float32; ``labels`` name the neurons (e.g. class names);
        ``dead`` neurons never fire on the ``n_examples`` evaluation examples."""
        self.site, self.labels = site, labels
        self.values = np.asarray(values, dtype=np.float32).ravel()
        self.ablated = frozenset(ablated)
        self.modes = dict(modes or {})
        self.dead = frozenset(dead)
        self.n_examples = n_examples
        self.hover.setText(HINT)  # the old read-out named another layer or old values
        n = len(self.values)
        brushes = [OFF_BRUSH if i in self.ablated else NEG_BRUSH if v < 0 else ON_BRUSH
                   for i, v in enumerate(self.values)]
        self.bars.setOpts(x=np.arange(n), height=self.values, width=0.8, brushes=brushes)
        off = sorted(self.ablated)
        self.crosses.setData(x=off, y=self.values[off] if off else [])
        axis = self.plot.getAxis("bottom")
        axis.setTicks([list(enumerate(labels))] if labels else None)
        self.plot.setLabel("bottom", "class" if labels else "neuron")
        self.plot.setXRange(-1, n, padding=0)
        lo, hi = min(0.0, float(self.values.min(initial=0))), float(self.values.max(initial=0))
        hi = hi if hi > lo else lo + 1
        self.plot.setYRange(lo, hi, padding=0.05)
        idle = sorted(self.dead - self.ablated)
        self.dead_bands.setOpts(x=idle, y0=[lo] * len(idle), height=[hi - lo] * len(idle),
                                width=0.8)
        note = dead_note(len(self.dead), n, "neurons", n_examples, "hatched grey")
        self.note.setText(note)
        self.note.setVisible(bool(note))
        self.title.setText(f"{site} — {n} neurons · {len(off)} switched off")
        self.drawn.emit(site)

    def numbers(self) -> tuple[tuple[str, ...], list]:
        rows = [(self.site, i, self.labels[i] if i < len(self.labels) else "",
                 f"{v:.6g}", int(i in self.ablated), int(i in self.dead))
                for i, v in enumerate(self.values)]
        return ("layer", "neuron", "label", "activation", "switched_off", "never_fires"), rows

    def set_stale(self, stale: bool) -> None:
        self.plot.setBackground("#2a2a3a" if stale else "k")

    def describe(self, i: int) -> str:
        """The hover line for neuron ``i``: its name, state and value."""
        name = f" ({self.labels[i]})" if i < len(self.labels) else ""
        state = []
        if i in self.ablated:
            state.append("switched off: set to its dataset mean"
                         if self.modes.get(i) == "mean" else "switched off: set to 0")
        if i in self.dead:
            on = f"any of the {self.n_examples} examples" if self.n_examples else "any example"
            state.append(f"never fires on {on}")
        words = f" ({'; '.join(state)})" if state else ""
        return f"{self.site} · neuron {i}{name}{words} · value {self.values[i]:.4g}"

    def _index_at(self, scene_pos) -> Optional[int]:
        if not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        x = self.plot.getPlotItem().vb.mapSceneToView(scene_pos).x()
        i = int(round(x))
        return i if 0 <= i < len(self.values) else None

    def _on_scene_clicked(self, ev) -> None:
        i = self._index_at(ev.scenePos())
        if i is not None and ev.modifiers() & TOGGLE_MODIFIERS:
            self.unit_toggled.emit(self.site, i)

    def _on_scene_moved(self, scene_pos) -> None:
        i = self._index_at(scene_pos)
        if i is None:
            return
        self.hover.setText(self.describe(i))
