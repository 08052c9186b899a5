"""ModelTreePanel: every layer with its type, output shape, units and parameters."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from core.model import LayerInfo

COLUMNS = ("Layer", "Type", "Output", "Units", "Params")
#: When the dock is too narrow for every column, these go first (Units, Type, then
#: Output: each row's tooltip still says them); Layer and Params always stay.
HIDE_ORDER = (3, 1, 2)
#: The Layer column is cut no shorter than this before a column is hidden.
LAYER_MIN = 110


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(d) for d in shape)


class ModelTreePanel(QWidget):
    """Owns the tree of layers; emits ``layer_selected(name)`` when one is clicked."""

    layer_selected = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._widths: dict[int, int] = {}
        # Every column but Layer fits its contents, and Layer takes what is left: a
        # narrow dock cuts layer names short, never the Params column (issue #12).
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(30)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.setMinimumWidth(180)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tree)
        self.show_placeholder("loading model…")
        self.tree.currentItemChanged.connect(self._on_current_changed)

    def show_placeholder(self, text: str) -> None:
        self.tree.clear()
        self._items.clear()
        QTreeWidgetItem(self.tree, [text])

    def show_model(self, name: str, title: str, layers: tuple[LayerInfo, ...],
                   n_params: int) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        self._items.clear()
        root = QTreeWidgetItem(self.tree, [name, "model", "", "", f"{n_params:,}"])
        root.setToolTip(0, title)
        root.setFlags(root.flags() & ~Qt.ItemFlag.ItemIsSelectable)
        for info in layers:
            # Hang each layer under its nearest listed ancestor and show only the part
            # of its name below it (modules that never run on their own are not listed).
            ancestor = info.parent
            while ancestor and ancestor not in self._items:
                ancestor = ancestor.rpartition(".")[0]
            parent = self._items.get(ancestor, root)
            label = info.name[len(ancestor) + 1:] if ancestor else info.name
            item = QTreeWidgetItem(parent, [label, info.kind, _shape(info.output_shape),
                                            str(info.n_units),
                                            f"{info.n_params:,}" if info.n_params else "–"])
            item.setData(0, Qt.ItemDataRole.UserRole, info.name)
            # The whole row in words: a narrow dock hides the Type and Units columns.
            item.setToolTip(0, f"{info.name} · {info.kind} · output "
                               f"{_shape(info.output_shape)} per input · "
                               f"{info.n_units} {info.unit_name}s")
            self._items[info.name] = item
        self.tree.expandAll()
        self.tree.blockSignals(False)
        header = self.tree.header()
        for col in range(len(COLUMNS)):
            self.tree.setColumnHidden(col, False)
        self._widths = {col: max(header.sectionSizeHint(col), self.tree.sizeHintForColumn(col))
                        for col in range(len(COLUMNS))}
        self._fit_columns()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Hide the least needed columns until Layer and Params fit the width."""
        if not self._widths:
            return
        room = self.tree.viewport().width()
        need = min(self._widths[0], LAYER_MIN) + sum(self._widths[c] for c in (1, 2, 3, 4))
        hidden = set()
        for col in HIDE_ORDER:
            if need <= room:
                break
            hidden.add(col)
            need -= self._widths[col]
        for col in HIDE_ORDER:
            if self.tree.isColumnHidden(col) != (col in hidden):
                self.tree.setColumnHidden(col, col in hidden)

    def select(self, name: str) -> None:
        """Select ``name`` as if clicked (emits ``layer_selected``)."""
        item = self._items.get(name)
        if item is not None:
            self.tree.setCurrentItem(item)

    def names(self) -> list[str]:
        return list(self._items)

    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _on_current_changed(self, current: Optional[QTreeWidgetItem], _prev) -> None:
        name = current.data(0, Qt.ItemDataRole.UserRole) if current else None
        if name:
            self.layer_selected.emit(name)
