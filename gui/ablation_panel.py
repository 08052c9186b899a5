"""AblationPanel: switch units off from a checklist, pick the mode, reset."""

from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtCore import QSignalBlocker, Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from core.ablation import Ablation, ablated_units
from core.model import LayerInfo

MODE_TEXT = {"zero": "zero (set to 0)", "mean": "mean (dataset average)"}


class AblationPanel(QWidget):
    """Owns the unit checklist of the selected layer and the list of active ablations."""

    unit_toggled = Signal(str, int)
    mode_changed = Signal(str)
    reset_requested = Signal()
    layer_change_requested = Signal(object)   # an Ablation acting on the whole layer

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.layer: Optional[LayerInfo] = None
        self.mode_box = QComboBox()
        for mode, text in MODE_TEXT.items():
            self.mode_box.addItem(text, mode)
        self.mode_box.setToolTip("zero: the unit outputs 0. mean: the unit outputs its "
                                 "average over the evaluation set, so only the information "
                                 "it carries about this input is removed.")
        self.units_label = QLabel("Units")
        self.units = QListWidget()
        self.units.setToolTip("Untick a unit to switch it off")
        self.active = QListWidget()
        self.active.setMaximumHeight(90)
        self.reset = QPushButton("Reset ablations")
        self.reset.setEnabled(False)
        self.layer_off = QPushButton("Whole layer off")
        self.layer_off.setToolTip("Switch every unit of this layer off (zero or mean)")
        self.skip = QPushButton("Skip layer")
        self.skip.setToolTip("Pass the layer's input straight through (only when input "
                             "and output have the same shape, e.g. a ReLU)")
        self.scale = QDoubleSpinBox()
        self.scale.setRange(0.0, 5.0)
        self.scale.setSingleStep(0.25)
        self.scale.setValue(1.0)
        self.scale.setPrefix("weights ×")
        self.scale_apply = QPushButton("Apply")
        self.scale_apply.setToolTip("Multiply this layer's weights (×1 undoes it)")
        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("Ablation mode:"))
        mode_row.addWidget(self.mode_box, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(mode_row)
        layout.addWidget(self.units_label)
        layout.addWidget(self.units, 1)
        whole = QHBoxLayout()
        whole.addWidget(self.layer_off)
        whole.addWidget(self.skip)
        scale_row = QHBoxLayout()
        scale_row.addWidget(self.scale, 1)
        scale_row.addWidget(self.scale_apply)
        layout.addLayout(whole)
        layout.addLayout(scale_row)
        layout.addWidget(QLabel("Switched off or changed:"))
        layout.addWidget(self.active)
        layout.addWidget(self.reset)
        self.units.itemChanged.connect(self._on_item_changed)
        self.mode_box.currentIndexChanged.connect(self._on_mode_changed)
        self.reset.clicked.connect(self.reset_requested)
        self.layer_off.clicked.connect(self._on_layer_off)
        self.skip.clicked.connect(self._on_skip)
        self.scale_apply.clicked.connect(self._on_scale)

    @property
    def mode(self) -> str:
        return self.mode_box.currentData()

    def show_layer(self, layer: LayerInfo, ablations: Sequence[Ablation]) -> None:
        """List the units of ``layer``, unticking the ones switched off."""
        self.layer = layer
        off = ablated_units(ablations, layer.name)
        with QSignalBlocker(self.units):
            self.units.clear()
            for unit in range(layer.n_units):
                item = QListWidgetItem(f"{layer.unit_name} {unit}")
                item.setData(Qt.ItemDataRole.UserRole, unit)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked if unit in off
                                   else Qt.CheckState.Checked)
                self.units.addItem(item)
        self.units_label.setText(f"Units of {layer.name} ({layer.n_units} "
                                 f"{layer.unit_name}s; untick to switch off)")
        self.show_ablations(ablations)

    def show_ablations(self, ablations: Sequence[Ablation]) -> None:
        self.active.clear()
        for abl in ablations:
            self.active.addItem(abl.label())
        if not ablations:
            self.active.addItem("nothing — the model is intact")
        self.reset.setEnabled(bool(ablations))
        modes = {abl.mode for abl in ablations}
        if len(modes) == 1:
            # Ablations set from outside (command line, a saved session) carry their mode.
            with QSignalBlocker(self.mode_box):
                self.mode_box.setCurrentIndex(self.mode_box.findData(modes.pop()))
        if self.layer is not None:
            off = ablated_units(ablations, self.layer.name)
            with QSignalBlocker(self.units):
                for row in range(self.units.count()):
                    item = self.units.item(row)
                    unit = item.data(Qt.ItemDataRole.UserRole)
                    item.setCheckState(Qt.CheckState.Unchecked if unit in off
                                       else Qt.CheckState.Checked)

    @Slot()
    def _on_layer_off(self) -> None:
        if self.layer is not None:
            self.layer_change_requested.emit(
                Ablation(self.layer.name, tuple(range(self.layer.n_units)), self.mode))

    @Slot()
    def _on_skip(self) -> None:
        if self.layer is not None:
            self.layer_change_requested.emit(Ablation(self.layer.name, mode="skip"))

    @Slot()
    def _on_scale(self) -> None:
        if self.layer is not None:
            self.layer_change_requested.emit(
                Ablation(self.layer.name, mode="scale", value=self.scale.value()))

    @Slot(QListWidgetItem)
    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self.layer is not None:
            self.unit_toggled.emit(self.layer.name, item.data(Qt.ItemDataRole.UserRole))

    @Slot(int)
    def _on_mode_changed(self, _index: int) -> None:
        self.mode_changed.emit(self.mode)
