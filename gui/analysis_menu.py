"""AnalysisController: the Analyse menu, its jobs and its docks (issue #13).

- **Measure importance of this layer**: every unit of the selected layer (channels,
  neurons or heads) switched off alone, zero or mean as the ablation panel says; a bar
  chart of the accuracy lost per unit (the "Importance" dock).
- **Probes…**: a linear probe on every layer per question ("Probes" dock).
- **Map of this layer**: PCA of the selected layer's activations ("Layer map" dock).

The docks sit in the bottom area, tabbed with the ablation table. Every call goes
through the worker with its own callbacks; results only ever reach the view that asked.
"""

from __future__ import annotations

from functools import partial
from typing import Optional

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from core.errors import MechscopeError
from core.kinds import LayerView
from gui.docks import SHORT_WINDOW, make_dock
from gui.views.importance_view import Bar, ImportanceChartView
from gui.views.layer_map_view import LayerMapView
from gui.views.probes_view import ProbesView
from gui.worker import UnexpectedError

IMPORTANCE, PROBES, MAP = "unit-importance", "probes", "layer-map"
#: Head importance: the workbench's key (the attention view's button) too.
HEADS = "importance"


def empty_caption(metric: str) -> str:
    """The importance dock's caption before a run."""
    lost = "the similarity to the intact embedding lost" if metric == "cosine" \
        else "the accuracy lost"
    return (f"Each unit of the selected layer is switched off alone (zero or mean, as in "
            f"the ablation panel) and {lost} is charted. Press the button.")


def head_layers(sites) -> str:
    """"L0 = block0.attn, L1 = block1.attn" for the heads sites of a head chart."""
    names = [f"L{i} = {site.rpartition('.')[0]}" for i, site in enumerate(sites)]
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"


def switched_off(ablations, sites) -> set[tuple[str, int]]:
    """(site, unit) of every unit of ``sites`` switched off alone or with others."""
    return {(a.site, u) for a in ablations if a.site in sites and not a.whole_layer
            for u in a.units}


class AnalysisController(QObject):
    """Owns the Analyse menu, the importance, probes and layer-map docks and their jobs.

    ``unit_page_requested(site, unit)``: a bar was double-clicked (the window opens the
    unit page)."""

    unit_page_requested = Signal(str, int)
    importance_shown = Signal(object)   # the Sweep drawn
    probes_shown = Signal(object)       # tuple of ProbeReport drawn
    map_shown = Signal(object)          # the LayerMap drawn

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.workbench = window.workbench
        self.worker = window.worker
        self.importance = ImportanceChartView(button_text="Measure importance", what="unit",
                                              exportable=True, one_row=True)
        self.importance.set_caption(empty_caption("accuracy"))
        self.probes = ProbesView()
        self.layer_map = LayerMapView()
        self.importance_dock = self._dock("Importance", self.importance)
        self.probes_dock = self._dock("Probes", self.probes)
        self.map_dock = self._dock("Layer map", self.layer_map)
        self._map_placed = False
        self.menu = window.menuBar().addMenu("&Analyse")
        self.importance_action = QAction("Measure &importance of this layer", self)
        self.importance_action.setShortcut(QKeySequence("Ctrl+I"))
        self.importance_action.setToolTip("Switch each unit of the selected layer off "
                                          "alone and chart the accuracy lost")
        self.probes_action = QAction("&Probes…", self)
        self.probes_action.setToolTip("Train a linear probe on every layer: where does "
                                      "the information appear?")
        self.map_action = QAction("&Map of this layer", self)
        self.map_action.setToolTip("A 2-D projection (PCA) of the selected layer over "
                                   "the evaluation set")
        for action in (self.importance_action, self.probes_action, self.map_action):
            self.menu.addAction(action)
        self._wire()

    def _dock(self, title: str, widget: QWidget) -> QDockWidget:
        window = self.window
        dock = make_dock(title, widget, window)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        beside = getattr(window, "experiments_dock", None)
        if beside is not None:
            window.tabifyDockWidget(beside, dock)
        dock.hide()
        if hasattr(window, "view_menu"):
            window.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _wire(self) -> None:
        wb = self.workbench
        # Lambdas: triggered(bool) must not arrive as the ``site`` argument.
        self.importance_action.triggered.connect(lambda: self.measure_importance())
        self.probes_action.triggered.connect(lambda: self.run_probes())
        self.map_action.triggered.connect(lambda: self.map_layer())
        self.importance.requested.connect(lambda: self.measure_importance())
        self.importance.unit_clicked.connect(wb.toggle_unit)
        self.importance.unit_page_requested.connect(self.unit_page_requested)
        self.probes.run_requested.connect(self.run_probes)
        self.probes.cancel_requested.connect(self.cancel_probes)
        self.layer_map.map_requested.connect(lambda: self.map_layer())
        self.layer_map.sample_requested.connect(wb.select_sample)
        wb.model_opened.connect(self._on_model_opened)
        wb.importance_ready.connect(self._on_heads_ready)
        wb.ablations_changed.connect(self._on_ablations_changed)
        wb.sample_ready.connect(lambda sample: self.layer_map.show_current(sample.index))
        tree = getattr(self.window, "model_tree", None)
        if tree is not None:
            tree.layer_selected.connect(self._on_layer_selected)
        panel = getattr(self.window, "ablation_panel", None)
        if panel is not None and hasattr(panel, "importance_requested"):
            panel.importance_requested.connect(lambda: self.measure_importance())
        attention = getattr(self.window, "attention_view", None)
        if attention is not None:  # the head chart inside the attention view
            attention.chart.unit_clicked.connect(wb.toggle_unit)
            attention.chart.unit_page_requested.connect(self.unit_page_requested)

    # --- showing a dock ----------------------------------------------------------------
    def show_dock(self, dock: QDockWidget) -> None:
        window = self.window
        if dock is self.map_dock and not self._map_placed:
            # A map wants height: in a short window the bottom area gets ~140 px (the
            # layer view keeps its own), so it opens as a tab beside the model tree.
            self._map_placed = True
            model = window.findChild(QDockWidget, "Model")
            bottom = window.dockWidgetArea(dock) == Qt.DockWidgetArea.BottomDockWidgetArea
            if window.height() < SHORT_WINDOW and model is not None and bottom \
                    and not dock.isVisible():
                window.tabifyDockWidget(model, dock)
        dock.show()
        dock.raise_()
        if window.dockWidgetArea(dock) == Qt.DockWidgetArea.BottomDockWidgetArea:
            height = int(min(max(0.3 * window.height(), 160), 320))
            window.resizeDocks([dock], [height], Qt.Orientation.Vertical)

    # --- importance --------------------------------------------------------------------
    def _layer(self, site: Optional[str]):
        return self.workbench.layer_info(site or self.workbench.layer)

    @Slot()
    def measure_importance(self, site: Optional[str] = None) -> None:
        """Every unit of ``site`` (default: the selected layer) switched off alone; for an
        attention layer, every head of every attention layer (charted in this dock and
        in the attention view's head chart)."""
        wb = self.workbench
        info = self._layer(site)
        if wb.info is None or info is None:
            self.importance.set_caption("Choose a layer in the model tree first.")
            self.show_dock(self.importance_dock)
            return
        mode = wb.mode
        if info.view is LayerView.ATTENTION:
            # Every head of every attention layer, in one batched pass: charted here,
            # where the user asked, and in the attention view beside the patterns.
            # The key is the attention view's own button's: one run, never two.
            self.importance.button.setEnabled(False)
            self.importance.set_caption(f"Switching each head of every attention layer "
                                        f"off in turn ({mode})…")
            self.show_dock(self.importance_dock)
            self.worker.submit(HEADS, wb.session.head_importance, mode,
                               on_done=partial(self._on_heads, wb.info.name),
                               on_error=self._on_importance_failed,
                               on_progress=self._on_importance_progress,
                               on_cancel=self._on_importance_cancelled)
            return
        self.importance.button.setEnabled(False)
        self.importance.set_caption(f"Switching each {info.unit_name} of {info.name} off "
                                    f"in turn ({mode})…")
        self.show_dock(self.importance_dock)
        self.worker.submit(IMPORTANCE, wb.session.unit_importance, info.name, mode,
                           on_done=partial(self._on_importance, wb.info.name),
                           on_error=self._on_importance_failed,
                           on_progress=self._on_importance_progress,
                           on_cancel=self._on_importance_cancelled)

    def _on_importance(self, model: str, sweep) -> None:
        self.importance.button.setEnabled(True)
        wb = self.workbench
        if wb.info is None or wb.info.name != model:
            return
        unit_info = wb.layer_info(sweep.site)
        unit_name = unit_info.unit_name if unit_info is not None else "unit"
        heads = unit_info is not None and unit_info.view is LayerView.ATTENTION
        entries = [Bar(sweep.site, int(u), f"H{u}" if heads else str(u), float(s),
                       float(sweep.baseline_score)) for u, s in zip(sweep.units, sweep.score)]
        self.importance.what = unit_name
        self.importance.mode = sweep.mode
        self.importance.off = switched_off(wb.ablations, {sweep.site})
        self.importance.show_bars(entries, wb.info.kind.metric)
        self.importance.set_caption(
            f"{sweep.site}: {self.importance.caption_text}, each alone on the intact "
            f"model ({len(entries)} {unit_name}s).")
        self.importance_shown.emit(sweep)

    def _on_heads(self, model: str, sweeps) -> None:
        """Head importance of this model: both head charts draw it (``importance_ready``
        reaches this dock's and the attention view's)."""
        self.importance.button.setEnabled(True)
        wb = self.workbench
        if wb.info is None or wb.info.name != model:
            return
        wb.importance_ready.emit(sweeps)

    @Slot(object)
    def _on_heads_ready(self, sweeps) -> None:
        """Every head of every attention layer (from this dock or the attention view's
        button): the dock charts them too."""
        self.importance.button.setEnabled(True)
        wb = self.workbench
        if wb.info is None or not sweeps:
            return
        chart = self.importance
        sites = [sweep.site for sweep in sweeps]
        chart.what = "head"
        chart.off = switched_off(wb.ablations, set(sites))
        chart.show_sweeps(sweeps[0].baseline_score, sweeps, wb.info.kind.metric)
        chart.set_caption(f"Heads of every attention layer ({head_layers(sites)}): "
                          f"{chart.caption_text}, each alone on the intact model "
                          f"({len(chart.entries)} heads).")
        self.importance_shown.emit(tuple(sweeps))

    def _on_importance_failed(self, error: MechscopeError) -> None:
        self.importance.button.setEnabled(True)
        self.importance.set_caption(str(error))
        if isinstance(error, UnexpectedError):
            self.workbench.report_error(error)

    def _on_importance_progress(self, fraction: float, text: str) -> None:
        self.importance.set_caption(f"{text or 'Measuring'} … {100 * fraction:.0f} %")

    def _on_importance_cancelled(self) -> None:
        self.importance.button.setEnabled(True)
        self.importance.set_caption("Cancelled. Press the button to measure again.")

    # --- probes ------------------------------------------------------------------------
    @Slot()
    def run_probes(self) -> None:
        wb = self.workbench
        if wb.info is None:
            return
        self.probes.show_running(wb.info.title)
        self.show_dock(self.probes_dock)
        self.worker.submit(PROBES, wb.session.probes,
                           on_done=partial(self._on_probes, wb.info.name),
                           on_error=self._on_probes_failed,
                           on_progress=self.probes.show_progress,
                           on_cancel=self.probes.show_cancelled)

    @Slot()
    def cancel_probes(self) -> None:
        self.worker.cancel(PROBES)

    def _on_probes(self, model: str, reports) -> None:
        wb = self.workbench
        if wb.info is None or wb.info.name != model:
            self.probes.clear()
            return
        self.probes.show_reports(reports, wb.info.title)
        self.probes_shown.emit(reports)

    def _on_probes_failed(self, error: MechscopeError) -> None:
        if isinstance(error, UnexpectedError):
            self.probes.show_failed(str(error))
            self.workbench.report_error(error)
        else:  # the core refused (no labels): pressing again would say it again
            self.probes.show_refused(str(error))

    # --- layer map ---------------------------------------------------------------------
    @Slot()
    def map_layer(self, site: Optional[str] = None) -> None:
        wb = self.workbench
        info = self._layer(site)
        if wb.info is None or info is None:
            self.layer_map.clear("Choose a layer in the model tree first.")
            self.show_dock(self.map_dock)
            return
        self.layer_map.show_running(info.name)
        self.show_dock(self.map_dock)
        self.worker.submit(MAP, wb.session.layer_map, info.name,
                           on_done=partial(self._on_map, wb.info.name),
                           on_error=self._on_map_failed,
                           on_cancel=lambda: self.layer_map.clear("Cancelled."))

    def _on_map(self, model: str, layer_map) -> None:
        wb = self.workbench
        if wb.info is None or wb.info.name != model:
            return
        self.layer_map.show_map(layer_map)
        self.layer_map.show_current(wb.sample_index)
        self.map_shown.emit(layer_map)

    def _on_map_failed(self, error: MechscopeError) -> None:
        self.layer_map.show_failed(str(error))
        if isinstance(error, UnexpectedError):
            self.workbench.report_error(error)

    # --- the window's state --------------------------------------------------------------
    @Slot(object)
    def _on_model_opened(self, info) -> None:
        """Another model: no chart keeps the previous one's results (its labels, axis
        names and captions back to the empty state)."""
        metric = info.kind.metric
        self.importance.what = "unit"
        self.importance.clear(empty_caption(metric), metric)
        self.importance.button.setEnabled(True)
        attention = getattr(self.window, "attention_view", None)
        if attention is not None:
            attention.clear_importance(metric)
        self.probes.clear()
        self.layer_map.clear()
        self.layer_map.set_examples(info.examples, info.class_names, info.example_texts)
        self._on_layer_selected(self.workbench.layer)

    @Slot(str)
    def _on_layer_selected(self, name: str) -> None:
        info = self.workbench.layer_info(name)
        ok = info is not None
        self.importance.button.setText(f"Measure importance of {name}" if ok
                                       else "Measure importance")
        self.layer_map.map_button.setText(f"Map {name}" if ok else "Map this layer")
        self.importance_action.setEnabled(ok)
        self.map_action.setEnabled(ok)

    @Slot(tuple)
    def _on_ablations_changed(self, ablations) -> None:
        sites = {e.site for e in self.importance.entries}
        self.importance.set_switched_off(switched_off(ablations, sites))
        attention = getattr(self.window, "attention_view", None)
        if attention is not None:
            chart = attention.chart
            chart.set_switched_off(switched_off(ablations, {e.site for e in chart.entries}))
