"""HeadsController: Analyse › Every head… — the layer × head overview of a language
model (issue #14), its task chooser and its head-importance button.

Scores come from the session's head scores (already asked for when a text model
opens, cached in the core); importance is the workbench's "Measure head importance",
so the attention view's table and the Importance dock fill in too. Choosing a task
re-installs the model's evaluation set on the worker and then follows the same path as
opening a model: the accuracy panel re-evaluates, the head scores are measured again.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow

from gui.docks import place_tall_dock
from gui.views.head_overview_view import HeadOverviewView

SCORES, TASKS, TASK = "head-overview-scores", "lm-tasks", "model"
#: The maps want height (30 rows): the share of the window the dock opens with.
DOCK_SHARE = 0.45


def kv_group(info) -> int:
    """Query heads per key/value head of the open model (1: none share)."""
    if info is not None and info.name == "smollm2-135m":
        from core.zoo import smollm  # constants only: no torch

        return smollm.HEADS // smollm.KV_HEADS
    return 1


class HeadsController(QObject):
    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.workbench = window.workbench
        self.worker = window.worker
        self.analysis = window.analysis
        self.view = HeadOverviewView()
        self.dock = self.analysis._dock("Heads", self.view)
        self.action = QAction("&Every head…", self)
        self.action.setToolTip("Every attention head at a glance: previous-token, induction "
                               "and first-token scores, and the accuracy lost without it")
        self.analysis.menu.addAction(self.action)
        self._placed = False
        self._tasks: tuple = ()
        wb = self.workbench
        self.action.triggered.connect(lambda: self.open())
        self.view.importance_requested.connect(wb.measure_importance)
        self.view.task_chosen.connect(self.use_task)
        self.view.head_clicked.connect(self.open_head)
        wb.model_opened.connect(self._on_model_opened)
        wb.scores_ready.connect(self.view.set_scores)
        wb.importance_ready.connect(self._on_importance)

    # --- intent -----------------------------------------------------------------------
    def open(self) -> None:
        """Show the dock and measure the scores if they are not in yet."""
        self._place()
        self.analysis.show_dock(self.dock)
        window = self.window
        if window.dockWidgetArea(self.dock) == Qt.DockWidgetArea.BottomDockWidgetArea:
            window.resizeDocks([self.dock], [int(DOCK_SHARE * window.height())],
                               Qt.Orientation.Vertical)
        info = self.workbench.info
        if info is not None and info.kind.reads_text and self.view.scores is None:
            self.worker.submit(SCORES, self.workbench.session.head_scores,
                               on_done=self.view.set_scores,
                               on_error=self.workbench.report_error)

    def _place(self) -> None:
        if not self._placed:
            self._placed = True
            place_tall_dock(self.window, self.dock)

    @Slot(str)
    def use_task(self, name: str) -> None:
        """Evaluate on task ``name`` from now on (as opening the model would follow)."""
        if not name:
            return
        wb = self.workbench
        self.view.caption.setText(f"switching to the {name} task…")
        # The result is a ModelInfo: the workbench's own model-opened path applies it.
        self.worker.submit(TASK, wb.session.use_task, name, on_done=wb._on_model,
                           on_error=wb.report_error)

    @Slot(str, int)
    def open_head(self, layer: str, head: int) -> None:
        """The attention view of ``layer`` with ``head`` enlarged."""
        attention = getattr(self.window, "attention_view", None)
        if attention is not None:
            if layer == self.workbench.layer:
                attention.select_head(head)
            else:
                attention.selected = head  # kept when the layer's patterns arrive
        self.window.model_tree.select(layer)

    # --- results ----------------------------------------------------------------------
    @Slot(object)
    def _on_model_opened(self, info) -> None:
        self.view.clear()
        self.view.set_group(kv_group(info))
        if info.kind.reads_text:
            self.worker.submit(TASKS, self.workbench.session.lm_tasks,
                               on_done=lambda tasks, name=info.dataset_name:
                               self._on_tasks(tasks, name),
                               on_error=self.workbench.report_error)
        else:
            self.view.set_tasks((), "")

    def _on_tasks(self, tasks, dataset_name: str) -> None:
        self._tasks = tuple(tasks)
        current = next((t.name for t in tasks if t.dataset == dataset_name), "")
        self.view.set_tasks(self._tasks, current)

    @Slot(object)
    def _on_importance(self, sweeps) -> None:
        info = self.workbench.info
        if sweeps and info is not None:
            self.view.set_importance(sweeps, info.kind.metric)
