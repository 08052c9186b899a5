"""MainWindow: docks and wiring only — the model tree on the left, the input and its
prediction on top, the layer view in the centre, ablations and accuracy on the right."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDockWidget, QLabel, QMainWindow, QSizePolicy,
                               QSplitter, QStackedWidget, QToolBar, QVBoxLayout, QWidget)

from core.api import SessionAPI
from core.kinds import ModelKind
from gui.ablation_panel import AblationPanel
from gui.accuracy_panel import AccuracyPanel
from gui.analysis_menu import AnalysisController
from gui.crash import CrashDialog
from gui.docks import make_dock
from gui.experiments_panel import ExperimentsPanel
from gui.file_menu import FileMenu
from gui.file_opener import FileOpener
from gui.lesson_router import LessonRouter
from gui.lens_dock import LensController
from gui.lessons_panel import LessonsPanel
from gui.prediction_presenter import PredictionPresenter
from gui.input_panel import InputPanel
from gui.message_bar import MessageBar
from gui.heads_dock import HeadsController
from gui.patching_dock import PatchingController
from gui.model_tree import ModelTreePanel
from gui.settings import AppSettings
from gui.status_panel import StatusPanel
from gui.token_input_panel import TokenInputPanel
from gui.training_view import TrainingView
from gui.unit_pages import UnitPages
from gui.view_stack import ViewStack
from gui.views.prediction_view import PredictionView
from gui.views.token_prediction_view import TokenPredictionView
from gui.views.unit_page_view import UnitPageView
from gui.workbench import Workbench
from gui.worker import Worker


class MainWindow(QMainWindow):
    """The workbench window."""

    #: After the window closed and its worker was shut down (``mechscope.show`` waits
    #: for it).
    closed = Signal()

    def __init__(self, session: SessionAPI, worker: Optional[Worker] = None,
                 settings: Optional[AppSettings] = None) -> None:
        super().__init__()
        self.setWindowTitle("Mechscope")
        self.resize(1440, 900)
        self.settings = settings
        self.worker = worker or Worker(self)
        self.session = session
        self.workbench = Workbench(session, self.worker, self)
        self.crash_dialog = CrashDialog(self)
        self.setAcceptDrops(True)
        self.file_menu = FileMenu(self.menuBar(), settings.recent_files() if settings else [])
        self.edit_menu = self.menuBar().addMenu("&Edit")
        self.view_menu = self.menuBar().addMenu("&View")
        self._build(session)
        self._wire()
        if settings is not None:
            self._restore(settings)

    def _build(self, session: SessionAPI) -> None:
        self.model_tree = ModelTreePanel()
        self.input_panel = InputPanel()
        self.token_panel = TokenInputPanel()
        self.prediction = PredictionView()
        self.token_prediction = TokenPredictionView()
        self.views = ViewStack()
        self.channel_grid = self.views.channel_grid
        self.neuron_view = self.views.neuron_view
        self.attention_view = self.views.attention_view
        self.accuracy_panel = AccuracyPanel()
        self.ablation_panel = AblationPanel()
        self.message_bar = MessageBar()
        self.status_panel = StatusPanel()
        self.inputs = self._stack(self.input_panel, self.token_panel)
        self.predictions = self._stack(self.prediction, self.token_prediction)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.inputs)
        top.addWidget(self.predictions)
        top.setSizes([560, 300])
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(top)
        centre.addWidget(self.views)
        centre.setStretchFactor(1, 1)
        centre.setSizes([250, 650])
        self.training_view = TrainingView(session, self.worker)
        # A hidden page still sets the stack's minimum: the training view's row of
        # controls must not keep the workbench (and the window) wide (issue #12).
        self.training_view.setSizePolicy(QSizePolicy.Policy.Ignored,
                                         QSizePolicy.Policy.Preferred)
        self.centre = self._stack(centre, self.training_view)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.centre, 1)
        self.setCentralWidget(body)
        model_dock = self._dock("Model", self.model_tree, Qt.DockWidgetArea.LeftDockWidgetArea,
                                340)
        self.lessons_panel = LessonsPanel()
        lessons_dock = self._dock("Lessons", self.lessons_panel,
                                  Qt.DockWidgetArea.LeftDockWidgetArea, 340)
        self.tabifyDockWidget(model_dock, lessons_dock)
        model_dock.raise_()
        self.experiments_panel = ExperimentsPanel()
        self.experiments_dock = self._dock("Ablation table", self.experiments_panel,
                                           Qt.DockWidgetArea.BottomDockWidgetArea, 200)
        self.experiments_dock.hide()
        self.lessons = LessonRouter(self.centre, centre, self.training_view, self.workbench,
                                    self.model_tree, self.lessons_panel, self.experiments_dock)
        self.lessons.training_shown.connect(self._on_training_shown)
        self.lessons_dock = lessons_dock
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.accuracy_panel)
        right.addWidget(self.ablation_panel)
        self.side_dock = self._dock("Ablation and accuracy", right,
                                    Qt.DockWidgetArea.RightDockWidgetArea, 300)
        # "What does this unit do?": beside the layer view, left of the accuracy panel.
        self.unit_page_view = UnitPageView()
        # Sized when it opens: a size here would widen the accuracy dock it is put beside.
        self.unit_page_dock = self._dock("What does this unit do?", self.unit_page_view,
                                         Qt.DockWidgetArea.RightDockWidgetArea, 300)
        self.splitDockWidget(self.unit_page_dock, self.side_dock, Qt.Orientation.Horizontal)
        self.unit_page_dock.hide()
        self.statusBar().addPermanentWidget(self.status_panel, 1)
        self.model_box = QComboBox()
        for entry in session.available_models():
            self.model_box.addItem(entry.title, entry.name)
        bar = QToolBar("Model")
        bar.setObjectName("model-toolbar")
        bar.setMovable(False)
        bar.addWidget(QLabel(" Model: "))
        bar.addWidget(self.model_box)
        self.addToolBar(bar)

    @staticmethod
    def _stack(*widgets: QWidget) -> QStackedWidget:
        stack = QStackedWidget()
        for widget in widgets:
            stack.addWidget(widget)
        return stack

    def _dock(self, title: str, widget: QWidget, area, size: int) -> QDockWidget:
        dock = make_dock(title, widget, self)
        self.addDockWidget(area, dock)
        vertical = area == Qt.DockWidgetArea.BottomDockWidgetArea
        self.resizeDocks([dock], [size], Qt.Orientation.Vertical if vertical
                         else Qt.Orientation.Horizontal)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _wire(self) -> None:
        wb, worker = self.workbench, self.worker
        self.model_tree.layer_selected.connect(wb.select_layer)
        self.input_panel.sample_requested.connect(wb.select_sample)
        self.input_panel.image_file_chosen.connect(wb.open_file)
        self.input_panel.drawing_made.connect(wb.use_drawing)
        self.token_panel.sample_requested.connect(wb.select_sample)
        self.token_panel.text_submitted.connect(wb.open_text)
        self.views.unit_toggled.connect(wb.toggle_unit)
        self.ablation_panel.unit_toggled.connect(wb.toggle_unit)
        self.ablation_panel.mode_changed.connect(wb.set_mode)
        self.ablation_panel.reset_requested.connect(wb.reset_ablations)
        self.ablation_panel.layer_change_requested.connect(wb.apply_layer_change)
        self.attention_view.importance_requested.connect(wb.measure_importance)
        self.attention_view.layer_requested.connect(self.model_tree.select)
        self.model_box.activated.connect(self._on_model_chosen)
        self.file_menu.open_requested.connect(self.input_panel.choose_file)
        self.files = FileOpener(self, wb, self.file_menu, self.message_bar, self.settings)
        self.file_menu.quit_requested.connect(self.close)
        self.file_menu.export_requested.connect(self.views.export)
        self.status_panel.cancel_requested.connect(self._on_cancel_requested)
        self.undo_action = self.edit_menu.addAction("&Undo ablation", QKeySequence.StandardKey.Undo)
        self.redo_action = self.edit_menu.addAction("&Redo ablation", QKeySequence.StandardKey.Redo)
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.undo_action.triggered.connect(wb.undo)
        self.redo_action.triggered.connect(wb.redo)
        wb.history_changed.connect(self._on_history_changed)
        self._on_history_changed(False, False)
        worker.activity.connect(self.status_panel.show_progress)
        worker.busy_changed.connect(self.status_panel.set_busy)
        worker.notice.connect(self.show_notice)
        worker.on_unhandled_error = wb.report_error
        self.presenter = PredictionPresenter(
            wb, self.views, self.ablation_panel, self.inputs, self.predictions,
            self.input_panel, self.token_panel, self.prediction, self.token_prediction,
            self.message_bar)
        wb.model_opened.connect(self._on_model_opened)
        wb.sample_ready.connect(self._on_sample_ready)
        wb.image_ready.connect(self.input_panel.show_image)
        wb.image_ready.connect(self._on_image_ok)
        wb.evaluation_ready.connect(self.accuracy_panel.show_result)
        wb.evaluation_ready.connect(self._on_evaluation_ready)
        wb.evaluation_cancelled.connect(self.accuracy_panel.show_cancelled)
        wb.ablations_changed.connect(self.ablation_panel.show_ablations)
        wb.scores_ready.connect(self.attention_view.set_scores)
        wb.importance_ready.connect(self._on_importance_ready)
        wb.error.connect(self.show_error)
        wb.crashed.connect(self.crash_dialog.report)
        wb.stale.connect(self._on_stale)
        self.unit_pages = UnitPages(self.session, worker, wb, self.unit_page_view, self)
        self.views.unit_page_requested.connect(self.unit_pages.open)
        self.unit_pages.shown.connect(self._on_unit_page_shown)
        self.unit_pages.closed.connect(self.unit_page_dock.hide)
        self.unit_page_dock.visibilityChanged.connect(self._on_unit_page_visibility)
        # The Analyse menu: importance of any layer, probes, the map of a layer.
        self.analysis = AnalysisController(self)
        self.heads = HeadsController(self)  # Analyse › Every head…
        self.lens = LensController(self)  # Analyse › Logit lens
        self.patching = PatchingController(self)  # Analyse › Activation patching…
        if hasattr(self, "unit_pages"):  # double-clicked bars open the unit's page
            self.analysis.unit_page_requested.connect(self.unit_pages.open)

    @Slot(object)
    def _on_unit_page_shown(self, page) -> None:
        dock = self.unit_page_dock
        if not dock.isVisible():
            self._side_width = self.side_dock.width()
            dock.show()
            # At most 30 % of the window (and 440 px), taken from the layer view: the
            # accuracy panel keeps its width, the layer view's tiles stay readable.
            width = max(260, min(440, int(0.3 * self.width())))
            self.resizeDocks([dock, self.side_dock], [width, self._side_width],
                             Qt.Orientation.Horizontal)
        dock.raise_()
        self._follow_unit_page(page)

    def _follow_unit_page(self, page) -> None:
        """The layer view marks the page's unit, as a click on it does: the channel grid
        enlarges its tile, the attention view its head (opened, Back, Next)."""
        grid, heads = self.channel_grid, self.attention_view
        if grid.site == page.site and 0 <= page.unit < len(grid.tiles):
            if grid.selected != page.unit:   # a click on the tile enlarged it already
                grid.select_unit(page.unit)
        elif heads.heads_site == page.site and 0 <= page.unit < len(heads.tiles) \
                and heads.selected != page.unit:
            heads.select_head(page.unit)

    @Slot(bool)
    def _on_unit_page_visibility(self, visible: bool) -> None:
        # Closed (its ✕, the dock's, or another model): the layer view gets the room
        # back, not the accuracy panel beside it.
        side = getattr(self, "_side_width", 0)
        if not visible and side and not self.unit_page_dock.isVisible():
            self.resizeDocks([self.side_dock], [side], Qt.Orientation.Horizontal)

    @Slot(object)
    def _on_model_opened(self, info) -> None:
        self.setWindowTitle(f"Mechscope — {info.title}")
        # A model from a file is none of the built-in ones: say which it is instead of
        # leaving the box blank.
        self.model_box.setPlaceholderText(info.title)
        self.model_box.setCurrentIndex(self.model_box.findData(info.name))
        self.model_tree.show_model(info.name, info.title, info.layers, info.n_params)
        self.model_tree.select(self.workbench.layer)
        # Only a model that reads pictures can be given an image file, and only one that
        # takes the digits' input (or the built-in digits converted to its own).
        pictures = info.kind is ModelKind.IMAGE and (info.dataset_source == "built-in" or
                                                     tuple(info.input_shape) == (1, 16, 16))
        self.file_menu.open_action.setEnabled(pictures)
        self.file_menu.open_action.setToolTip("" if pictures else
                                              f"{info.name} reads no digit pictures")
        builtin = info.dataset_source == "built-in"
        self.accuracy_panel.set_dataset(info.dataset_name if builtin else info.dataset_source,
                                        builtin)
        where = ("built-in held-out" if info.dataset_source == "built-in"
                 else f"examples of your data ({info.dataset_source}):")
        # How the model runs (e.g. that each ablation reruns all of it), before the data
        # part, which is elided first in a narrow window.
        note = f"{info.note} · " if info.note else ""
        self.status_panel.info.setText(
            f"{info.name} ready · {info.n_params:,} parameters · {note}evaluating on "
            f"{info.dataset_size} {where} {info.dataset_name}")

    @Slot(object)
    def _on_sample_ready(self, sample) -> None:
        info = self.workbench.info
        if info is not None and info.kind is ModelKind.VALUES:
            return  # a row of numbers: the presenter's values panel draws it
        if sample.display is not None:
            self.input_panel.show_sample(sample.index, sample.label, sample.display,
                                         sample.model_input)
        else:
            self.token_panel.select_example(sample.index)

    @Slot(bool)
    def _on_training_shown(self, training: bool) -> None:
        self.side_dock.setVisible(not training)
        if training:  # choosing a model must not hide the model tree (issue #12)
            self.lessons_dock.raise_()

    @Slot(object)
    def _on_evaluation_ready(self, result) -> None:
        if self.workbench.info is not None:
            info = self.workbench.info
            self.experiments_panel.record(info.name, result, info.dataset_name)

    @Slot(object)
    def _on_importance_ready(self, sweeps) -> None:
        if sweeps:
            self.attention_view.set_importance(sweeps[0].baseline_score, sweeps)

    @Slot(int)
    def _on_model_chosen(self, index: int) -> None:
        self.lessons.show_workbench()
        name = self.model_box.itemData(index)
        if self.workbench.info is None or name != self.workbench.info.name:
            self.model_tree.show_placeholder(f"loading {name}…")
            self.workbench.open_model(name)

    @Slot(object)
    def _on_image_ok(self, _converted) -> None:
        self.message_bar.hide()

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self.files.open_urls(event.mimeData().urls()):
            event.acceptProposedAction()

    @Slot(str, bool)
    def _on_stale(self, what: str, stale: bool) -> None:
        if what == "accuracy":
            self.accuracy_panel.set_stale(stale)
        else:
            self.views.set_stale(stale)

    @Slot(bool, bool)
    def _on_history_changed(self, can_undo: bool, can_redo: bool) -> None:
        self.undo_action.setEnabled(can_undo)
        self.redo_action.setEnabled(can_redo)

    @Slot()
    def _on_cancel_requested(self) -> None:
        self.worker.cancel()
        self.status_panel.show_cancelled()

    @Slot(str)
    def show_error(self, text: str) -> None:
        self.message_bar.show_message(text, "error")

    @Slot(str)
    def show_notice(self, text: str) -> None:
        self.message_bar.show_message(text, "info")

    def _restore(self, settings: AppSettings) -> None:
        if (geometry := settings.geometry()) is not None:
            self.restoreGeometry(geometry)
        if (state := settings.window_state()) is not None:
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self.settings is not None:
            self.settings.save_window(self.saveGeometry(), self.saveState())
            wb = self.workbench
            if wb.info is not None:
                self.settings.remember(wb.info.name, wb.layer, wb.sample_index)
        self.worker.shutdown()
        super().closeEvent(event)
        self.closed.emit()
