"""The window's dock widgets: one way to make them, so every dock can be moved, floated
and closed alike and restores by name (``objectName`` is what ``restoreState`` keys on)."""

from __future__ import annotations

from PySide6.QtWidgets import QDockWidget, QWidget


def make_dock(title: str, widget: QWidget, parent: QWidget) -> QDockWidget:
    """A movable, floatable, closable dock named ``title`` holding ``widget``."""
    dock = QDockWidget(title, parent)
    dock.setObjectName(title)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                     | QDockWidget.DockWidgetFeature.DockWidgetClosable)
    dock.setWidget(widget)
    return dock
