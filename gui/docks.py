"""The window's dock widgets: one way to make them, so every dock can be moved, floated
and closed alike and restores by name (``objectName`` is what ``restoreState`` keys on)."""

from __future__ import annotations

from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

#: Windows shorter than this open a tall dock beside the model tree, not below.
SHORT_WINDOW = 800


def make_dock(title: str, widget: QWidget, parent: QWidget) -> QDockWidget:
    """A movable, floatable, closable dock named ``title`` holding ``widget``."""
    dock = QDockWidget(title, parent)
    dock.setObjectName(title)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                     | QDockWidget.DockWidgetFeature.DockWidgetClosable)
    dock.setWidget(widget)
    return dock


def place_tall_dock(window: QMainWindow, dock: QDockWidget) -> None:
    """A dock of many rows (30 layers) opened the first time: in a short window the
    bottom area keeps ~140 px (the layer view keeps its own), a few px per row, so it
    becomes a tab beside the model tree, which has the window's height. Called once per
    dock, before it is shown; where the user moves it later stays."""
    model = window.findChild(QDockWidget, "Model")
    if window.height() < SHORT_WINDOW and model is not None and not dock.isVisible():
        window.tabifyDockWidget(model, dock)
