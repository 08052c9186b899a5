"""MainWindow: docks and wiring only — the model tree on the left, the input and its
prediction on top, the layer view in the centre, ablations and accuracy on the right."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QDockWidget, QLabel, QMainWindow, QSplitter, QStackedWidget,
                               QVBoxLayout, QWidget)

from core.session import Session
from gui.ablation_panel import AblationPanel
from gui.accuracy_panel import AccuracyPanel
from gui.input_panel import InputPanel
from gui.message_bar import MessageBar
from gui.model_tree import ModelTreePanel
from gui.status_panel import StatusPanel
from gui.views.channel_grid import ChannelGridView
from gui.views.neuron_view import NeuronView
from gui.views.prediction_view import PredictionView
from gui.workbench import Workbench
from gui.worker import Worker


class MainWindow(QMainWindow):
    """The workbench window."""

    def __init__(self, session: Session, worker: Optional[Worker] = None) -> None:
        super().__init__()
        self.setWindowTitle("Mechscope")
        self.resize(1440, 900)
        self.worker = worker or Worker(self)
        self.workbench = Workbench(session, self.worker, self)
        self._build()
        self._wire()

    def _build(self) -> None:
        self.model_tree = ModelTreePanel()
        self.input_panel = InputPanel()
        self.prediction = PredictionView()
        self.channel_grid = ChannelGridView()
        self.neuron_view = NeuronView()
        self.accuracy_panel = AccuracyPanel()
        self.ablation_panel = AblationPanel()
        self.message_bar = MessageBar()
        self.status_panel = StatusPanel()
        self.views = QStackedWidget()
        self.views.addWidget(self._placeholder())
        self.views.addWidget(self.channel_grid)
        self.views.addWidget(self.neuron_view)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.input_panel)
        top.addWidget(self.prediction)
        top.setSizes([560, 300])
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(top)
        centre.addWidget(self.views)
        centre.setStretchFactor(1, 1)
        centre.setSizes([250, 650])
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message_bar)
        layout.addWidget(centre, 1)
        self.setCentralWidget(body)
        self._dock("Model", self.model_tree, Qt.DockWidgetArea.LeftDockWidgetArea, 340)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.accuracy_panel)
        right.addWidget(self.ablation_panel)
        self._dock("Ablation and accuracy", right, Qt.DockWidgetArea.RightDockWidgetArea, 330)
        self.statusBar().addPermanentWidget(self.status_panel, 1)

    def _dock(self, title: str, widget: QWidget, area, width: int) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.resizeDocks([dock], [width], Qt.Orientation.Horizontal)

    @staticmethod
    def _placeholder() -> QLabel:
        label = QLabel("Click a layer in the model tree to see what its units do.")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return label

    def _wire(self) -> None:
        wb, worker = self.workbench, self.worker
        self.model_tree.layer_selected.connect(wb.select_layer)
        self.input_panel.sample_requested.connect(wb.select_sample)
        self.input_panel.image_file_chosen.connect(wb.open_image)
        for source in (self.channel_grid, self.neuron_view, self.ablation_panel):
            source.unit_toggled.connect(wb.toggle_unit)
        self.ablation_panel.mode_changed.connect(wb.set_mode)
        self.ablation_panel.reset_requested.connect(wb.reset_ablations)
        self.status_panel.cancel_requested.connect(self._on_cancel_requested)
        worker.progress.connect(self.status_panel.show_progress)
        worker.busy_changed.connect(self.status_panel.set_busy)
        wb.model_opened.connect(self._on_model_opened)
        wb.capture_ready.connect(self._on_capture_ready)
        wb.sample_ready.connect(self._on_sample_ready)
        wb.image_ready.connect(self.input_panel.show_image)
        wb.image_ready.connect(self._on_image_ready)
        wb.evaluation_ready.connect(self.accuracy_panel.show_result)
        wb.evaluation_cancelled.connect(self.accuracy_panel.show_cancelled)
        wb.ablations_changed.connect(self.ablation_panel.show_ablations)
        wb.error.connect(self.show_error)
        wb.stale.connect(self._on_stale)

    @Slot(object)
    def _on_model_opened(self, info) -> None:
        self.setWindowTitle(f"Mechscope — {info.title}")
        self.model_tree.show_model(info.name, info.title, info.layers, info.n_params)
        self.input_panel.show_examples(info.examples, info.example_labels)
        self.model_tree.select(self.workbench.layer)
        self.status_panel.info.setText(
            f"{info.name} ready · {info.n_params:,} parameters · evaluating on "
            f"{info.dataset_size} held-out {info.dataset_name} examples")

    @Slot(object, object)
    def _on_capture_ready(self, capture, current) -> None:
        wb = self.workbench
        info = wb.layer_info(wb.layer)
        acts = capture.activations.get(wb.layer)
        if info is None or acts is None:
            return
        off = frozenset(u for a in capture.ablations if a.site == wb.layer for u in a.units)
        if info.view == "channels":
            self.channel_grid.show_channels(info.name, acts, off)
            self.views.setCurrentWidget(self.channel_grid)
        else:
            last = wb.info.layers[-1].name == info.name
            self.neuron_view.show_neurons(info.name, acts, off,
                                          wb.info.class_names if last else ())
            self.views.setCurrentWidget(self.neuron_view)
        if self.ablation_panel.layer != info:
            self.ablation_panel.show_layer(info, wb.ablations)
        p = capture.prediction
        self.prediction.show_prediction(p.probs, p.baseline_probs, p.class_names,
                                        current.label if current else None)

    @Slot(object)
    def _on_sample_ready(self, sample) -> None:
        self.input_panel.show_sample(sample.index, sample.label, sample.display,
                                     sample.model_input)

    @Slot(object)
    def _on_image_ready(self, _converted) -> None:
        self.message_bar.hide()

    @Slot(str, bool)
    def _on_stale(self, what: str, stale: bool) -> None:
        if what == "accuracy":
            self.accuracy_panel.set_stale(stale)
        else:
            self.channel_grid.set_stale(stale)
            self.neuron_view.set_stale(stale)

    @Slot()
    def _on_cancel_requested(self) -> None:
        self.worker.cancel()
        self.status_panel.info.setText("Cancelled.")

    @Slot(str)
    def show_error(self, text: str) -> None:
        self.message_bar.show_message(text, "error")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        self.worker.shutdown()
        super().closeEvent(event)
