"""ValuesInputPanel: the input of a model that reads rows of numbers (a table's
features, a signal — :attr:`core.kinds.ModelKind.VALUES`): the example strip and
spinner of :class:`InputPanel`, with a bar chart of the chosen example's numbers
instead of pictures. An image file or a drawing is no row of numbers, so those
buttons are off and say why."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from gui.input_panel import InputPanel

NO_PICTURES = ("This model reads rows of numbers, not pictures: choose an example, or "
               "File › Evaluate on a data file… for rows of your own.")
#: Bars drawn at most; longer rows (a signal) are drawn as a line.
MAX_BARS = 64


class ValuesInputPanel(InputPanel):
    """The example strip (a bar picture per row) and the chosen row as a chart."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        for button in (self.open_button, self.draw_button):
            button.setEnabled(False)
            button.setToolTip(NO_PICTURES)
        self.strip.setToolTip("Held-out examples with their true labels: a bar per "
                              "number, each scaled by its range over the data")
        for label in self.previews:
            label.hide()
        self.chart = pg.PlotWidget()
        self.chart.setMenuEnabled(False)
        self.chart.setMouseEnabled(False, False)
        # Fixed height: the panel scrolls, and a taller chart would be cut by the scroll.
        self.chart.setFixedHeight(118)
        # Narrow enough to fit beside the buttons in a 1024-pixel window's input panel.
        self.chart.setMinimumWidth(90)
        self.chart.setLabel("bottom", "feature")
        self.chart.setLabel("left", "value")
        # Ticks in the data's own units: pyqtgraph's SI prefix turned ±0.5 into ±500
        # "value (x0.001)", a label cut off in a narrow panel.
        for side in ("left", "bottom"):
            self.chart.getPlotItem().getAxis(side).enableAutoSIPrefix(False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=pg.mkBrush("#4c9be8"))
        self.line = pg.PlotDataItem(pen=pg.mkPen("#4c9be8", width=1))
        self.chart.addItem(self.bars)
        self.chart.addItem(self.line)
        self.preview_row.insertWidget(1, self.chart, 1)
        self.class_names: tuple[str, ...] = ()
        self.values: Optional[np.ndarray] = None

    def set_classes(self, names: Sequence[str]) -> None:
        """The model's class names, for the strip and the caption of the chosen example."""
        self.class_names = tuple(names)

    def set_model(self, info) -> None:
        super().set_model(info)
        for button in (self.open_button, self.draw_button):
            button.setEnabled(False)
            button.setToolTip(NO_PICTURES)

    def show_sample(self, index: int, label: int, display: np.ndarray,
                    model_input: np.ndarray) -> None:
        self._select(index)
        name = self.class_names[label] if 0 <= label < len(self.class_names) else ""
        named = f" ({name})" if name and name != str(label) else ""
        self.source.setText(f"Dataset example {index} · true label {label}{named}")
        values = np.asarray(model_input, np.float64).reshape(-1)
        self.values = values
        x = np.arange(len(values))
        if len(values) <= MAX_BARS:
            self.line.setData([], [])
            self.bars.setOpts(x=x, height=values, width=0.7)
        else:
            self.bars.setOpts(x=[], height=[])
            self.line.setData(x, values)
        self.chart.getPlotItem().getAxis("bottom").setTicks(
            [[(i, str(i)) for i in x]] if len(values) <= 8 else None)
        self.chart.setXRange(-0.6, len(values) - 0.4, padding=0)
        low, high = float(min(values.min(), 0.0)), float(max(values.max(), 0.0))
        self.chart.setYRange(low, high if high > low else low + 1.0, padding=0.05)
        shape = "×".join(str(n) for n in np.shape(model_input))
        laid = f" ({shape})" if np.ndim(model_input) > 1 else ""
        self.steps.setText(f"{len(values)} numbers{laid}, given to the model as they are; "
                           "a thumbnail's bars scale each to its range over the data.")
