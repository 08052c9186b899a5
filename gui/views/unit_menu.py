"""How a layer view asks for a unit page: a double-click on a unit, or "What does this
unit do?" in its right-click menu. The views keep their own clicks (enlarge, Ctrl+click
to switch off); this listens to the same graphics scene beside them."""

from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtCore import QObject, QPointF, Qt
from PySide6.QtWidgets import QMenu, QWidget

#: As the views' Ctrl/Shift+click (channel_grid.TOGGLE_MODIFIERS, which imports this).
TOGGLE_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
                    | Qt.KeyboardModifier.MetaModifier)
ACTION = "What does this unit do?"


class UnitPageRequests(QObject):
    """Watches ``scene`` (a pyqtgraph GraphicsScene): ``unit_at(scene_pos)`` says which
    unit is there (or ``None``), ``request(unit)`` opens its page. ``menu`` is the last
    context menu shown (tests trigger its action)."""

    def __init__(self, scene, unit_at: Callable[[QPointF], Optional[int]],
                 request: Callable[[int], None], parent: QWidget) -> None:
        super().__init__(parent)
        self.unit_at, self.request, self.parent_widget = unit_at, request, parent
        self.menu: Optional[QMenu] = None
        scene.sigMouseClicked.connect(self._on_clicked)

    def _on_clicked(self, ev) -> None:
        unit = self.unit_at(ev.scenePos())
        if unit is None:
            return
        if ev.button() == Qt.MouseButton.LeftButton and ev.double() \
                and not ev.modifiers() & TOGGLE_MODIFIERS:
            self.request(unit)
        elif ev.button() == Qt.MouseButton.RightButton:
            self.show_menu(unit, ev.screenPos().toPoint())

    def menu_for(self, unit: int) -> QMenu:
        """The context menu of ``unit``: "What does this unit do?"."""
        menu = QMenu(self.parent_widget)
        action = menu.addAction(ACTION)
        action.triggered.connect(lambda: self.request(unit))
        menu.aboutToHide.connect(menu.deleteLater)
        self.menu = menu
        return menu

    def show_menu(self, unit: int, global_pos) -> None:
        self.menu_for(unit).popup(global_pos)
