"""AblationPanel: switch units off from a checklist, pick the mode, reset."""

from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtCore import QSignalBlocker, Qt, Signal, Slot
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFrame,
                               QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from core.ablation import Ablation, ablated_units
from core.model import LayerInfo
from gui.views.labels import ElidedLabel

MODE_TEXT = {"zero": "zero (set to 0)", "mean": "mean (dataset average)"}
DEFAULT_MODE = "zero"


def _runs(units: Sequence[int]) -> str:
    """0,1,2,3,7 -> "0–3,7": a whole layer's units stay one short label."""
    parts, start = [], None
    for i, unit in enumerate(units):
        if start is None:
            start = unit
        if i + 1 == len(units) or units[i + 1] != unit + 1:
            parts.append(str(start) if unit == start else
                         f"{start},{unit}" if unit == start + 1 else f"{start}–{unit}")
            start = None
    return ",".join(parts)


def short_label(abl: Ablation) -> str:
    """The active list's line for ``abl``: unit runs folded ("conv2:0–31 (zero)")."""
    if abl.whole_layer or not abl.units:
        return abl.label()
    return f"{abl.site}:{_runs(list(abl.units))} ({abl.mode})"


class AblationPanel(QWidget):
    """Owns the unit checklist of the selected layer and the list of active ablations."""

    unit_toggled = Signal(str, int)
    mode_changed = Signal(str)
    reset_requested = Signal()
    layer_change_requested = Signal(object)   # an Ablation acting on the whole layer
    importance_requested = Signal()           # measure every unit of the layer alone

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.layer: Optional[LayerInfo] = None
        self.mode_box = QComboBox()
        for mode, text in MODE_TEXT.items():
            self.mode_box.addItem(text, mode)
        # Its width is not its longest item's: the side panel may be narrow.
        self.mode_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode_box.setMinimumContentsLength(8)
        self.mode_box.setToolTip("zero: the unit outputs 0. mean: the unit outputs its "
                                 "average over the evaluation set, so only the information "
                                 "it carries about this input is removed.")
        # One elided line: a wrapped label would make the scrolled body as tall as its
        # preferred height, pushing Reset out of sight.
        self.units_label = ElidedLabel("Units")
        self.units = QListWidget()
        self.units.setToolTip("Untick a unit to switch it off")
        self.units.setMinimumHeight(60)
        self.active = QListWidget()
        self.active.setMaximumHeight(90)
        self.active.setMinimumHeight(40)
        # Long labels are cut with "…" (whole text in the tooltip), never scrolled sideways
        # or allowed to widen the panel.
        self.active.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.active.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.active.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.active.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
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
        self.importance = QPushButton("Measure importance")
        self.importance.setToolTip("Switch each unit of this layer off alone (in the mode "
                                   "above) and chart the accuracy lost (Analyse menu)")
        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("Mode:"))
        mode_row.addWidget(self.mode_box, 1)
        # Everything scrolls in a short window rather than being squeezed on top of
        # itself (or under the ablation table) — issue #12.
        body = QWidget()
        layout = QVBoxLayout(body)
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
        layout.addWidget(self.importance)
        layout.addWidget(QLabel("Switched off or changed:"))
        layout.addWidget(self.active)
        layout.addWidget(self.reset)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidget(body)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # It scrolls up and down only: as wide as its widest row of buttons.
        self.scroll_area.setMinimumWidth(body.minimumSizeHint().width() +
                                    self.scroll_area.verticalScrollBar().sizeHint().width())
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll_area)
        self.units.itemChanged.connect(self._on_item_changed)
        self.mode_box.currentIndexChanged.connect(self._on_mode_changed)
        self.reset.clicked.connect(self.reset_requested)
        self.layer_off.clicked.connect(self._on_layer_off)
        self.skip.clicked.connect(self._on_skip)
        self.scale_apply.clicked.connect(self._on_scale)
        self.importance.clicked.connect(lambda: self.importance_requested.emit())

    @property
    def mode(self) -> str:
        """The unit mode ("zero" or "mean"), never None: a whole-layer change such as
        "weights ×" has no place in the box and must not blank it."""
        mode = self.mode_box.currentData()
        return mode if mode in MODE_TEXT else DEFAULT_MODE

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
            item = QListWidgetItem(short_label(abl))
            item.setToolTip(abl.label())
            self.active.addItem(item)
        if not ablations:
            self.active.addItem("nothing — the model is intact")
        self.reset.setEnabled(bool(ablations))
        # Only unit modes belong in the box; skip/scale changes leave it as it is.
        modes = {abl.mode for abl in ablations if abl.mode in MODE_TEXT}
        if len(modes) == 1:
            # Ablations set from outside (command line, a saved session) carry their mode.
            with QSignalBlocker(self.mode_box):
                self.mode_box.setCurrentIndex(self.mode_box.findData(modes.pop()))
        if self.mode_box.currentIndex() < 0:
            with QSignalBlocker(self.mode_box):
                self.mode_box.setCurrentIndex(self.mode_box.findData(DEFAULT_MODE))
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
