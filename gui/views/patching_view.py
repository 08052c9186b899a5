"""PatchingView: activation patching of a language model (issue #14) — the prompts and
answers above, two heat maps (residual stream: layer × position; heads: layer × head)
of the normalised logit difference, and what one patched cell does to the prediction.

The view only draws and asks; :mod:`gui.patching_dock` runs the jobs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.views.imaging import DIVERGING, ValueImageItem
from gui.views.labels import ElidedLabel, TokenAxis, side_panel

KINDS = ("resid", "heads")
TITLES = {"resid": "Residual stream: layer × position",
          "heads": "Heads: layer × head"}
#: The words-and-buttons column's width (px).
SIDE_WIDTH = 330
#: Widest position label ("13: ␣Colosseum" shortened past this).
LABEL_CHARS = 14
#: Cells not computed yet.
PENDING = (70, 70, 70, 255)
TOP = 5
HINT = ("Colour: how much of the clean answer one patch restores (0 = as corrupted, "
        "1 = as clean; red: more, blue: less). Click a cell to apply that patch alone.")
EMPTY = ("Patching copies one activation of the clean run into the run on the "
         "corrupted prompt and measures logit[clean answer] − logit[corrupt answer] at "
         "the last position. Pick an example or type two prompts of the same token "
         "length, then Run.")


def colours(score: np.ndarray, limit: float) -> np.ndarray:
    """(R, C) scores -> (R, C, 4) uint8 on a diverging map centred at 0 (±limit);
    NaN (not computed) drawn grey."""
    cmap = pg.colormap.get(DIVERGING)
    x = np.clip((np.nan_to_num(score) + limit) / (2 * limit), 0, 1)
    rgba = cmap.map(x.ravel(), mode="byte").reshape(*score.shape, -1)
    if rgba.shape[-1] == 3:
        rgba = np.concatenate([rgba, np.full((*score.shape, 1), 255, np.uint8)], -1)
    rgba = np.ascontiguousarray(rgba, np.uint8)
    rgba[np.isnan(score)] = PENDING
    return rgba


def limit_for(score: np.ndarray) -> float:
    """±1 at least (full restoration is the scale), more where a patch overshoots."""
    finite = score[np.isfinite(score)]
    return max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)


class LabelAxis(TokenAxis):
    """A token axis with room for "13: ␣Paris" (a plain token axis shortens to 8)."""

    chars = LABEL_CHARS


def split_labels(grid, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Position labels of a residual grid: "3: ␣John" (numbered, so repeated tokens stay
    apart) from the clean prompt, and the corrupted token where it differs."""
    def piece(i: int) -> str:
        return names[i] if 0 <= i < len(names) else str(i)

    clean, corrupt = grid.clean_tokens.tolist(), grid.corrupt_tokens.tolist()
    return ([f"{p}: {piece(a)}" for p, a in enumerate(clean)],
            [piece(b) if a != b else "" for a, b in zip(clean, corrupt)])


class GridPlot(QWidget):
    """One heat map with labelled axes, hover read-out and click."""

    def __init__(self, kind: str, on_click, on_hover) -> None:
        super().__init__()
        self.kind = kind
        self.title = ElidedLabel(TITLES[kind])
        self.title.setStyleSheet("font-weight: bold;")
        self.left, self.bottom = LabelAxis("left", 8), LabelAxis("bottom", 7)
        self.top = LabelAxis("top", 7)
        self.plot = pg.PlotWidget(axisItems={"left": self.left, "bottom": self.bottom,
                                             "top": self.top})
        self.plot.showAxis("top", kind == "resid")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.invertY(True)
        self.plot.setLabel("left", "layer (block)")
        self.plot.setLabel("bottom", "position: clean token" if kind == "resid" else "head")
        if kind == "resid":
            self.plot.setLabel("top", "corrupted token, where it differs")
        self.image = ValueImageItem(0, lambda *_: on_click(kind, *self.image.last_click),
                                    lambda hit: on_hover(kind, hit))
        self.plot.addItem(self.image)
        self.marker = pg.QtWidgets.QGraphicsRectItem()
        self.marker.setPen(pg.mkPen("#ffffff", width=2))
        self.marker.setZValue(10)
        self.marker.hide()
        self.plot.addItem(self.marker)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)

    def draw(self, score: np.ndarray, rows: Sequence[str], columns: Sequence[str],
             limit: float, top: Sequence[str] = ()) -> None:
        self.image.values = score
        self.image.setImage(colours(score, limit))
        self.left.set_tokens(rows)
        self.bottom.set_tokens(columns)
        self.top.set_tokens(top)
        r, c = score.shape
        self.plot.getViewBox().setRange(xRange=(0, c), yRange=(0, r), padding=0)

    def mark(self, cell: tuple[int, int] | None) -> None:
        if cell is None:
            self.marker.hide()
            return
        self.marker.setRect(cell[1], cell[0], 1, 1)
        self.marker.show()


class PatchingView(QWidget):
    """Asks for a patching run and draws what comes back.

    Signals: ``run_requested(clean, corrupt, clean_answer, corrupt_answer)`` (texts; an
    empty answer means the model's top prediction), ``cancel_requested()``,
    ``cell_requested(kind, row, column)``."""

    run_requested = Signal(str, str, str, str)
    cancel_requested = Signal()
    cell_requested = Signal(str, int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grids: dict[str, object] = {}
        self.examples: list = []
        #: Readable token pieces of the open model, for the position labels.
        self.names: Sequence[str] = ()
        self._build()

    def _build(self) -> None:
        self.example = QComboBox()
        self.example.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.example.setMinimumContentsLength(12)
        self.clean, self.corrupt = QLineEdit(), QLineEdit()
        self.clean_answer, self.corrupt_answer = QLineEdit(), QLineEdit()
        for edit in (self.clean_answer, self.corrupt_answer):
            edit.setPlaceholderText("the model's top prediction")
        self.clean.setPlaceholderText("e.g. The Eiffel Tower is in the city of")
        self.corrupt.setPlaceholderText("the same number of tokens")
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setEnabled(False)
        # The words and buttons in a side column, the maps beside it at full height:
        # 31 rows need the dock's height more than the prompts do.
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(2)
        form.addRow("Example", self.example)
        form.addRow("Clean", self.clean)
        form.addRow("  answer", self.clean_answer)
        form.addRow("Corrupted", self.corrupt)
        form.addRow("  answer", self.corrupt_answer)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        self.message = QLabel(EMPTY)
        self.message.setWordWrap(True)
        self.cell_title = QLabel("Click a cell: the prediction at the last position, "
                                 "corrupted vs. patched.")
        self.cell_title.setWordWrap(True)
        self.table = QTableWidget(TOP, 2)
        self.table.setHorizontalHeaderLabels(("corrupted run", "patched"))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height()
                                  + TOP * 20 + 4)
        column = QWidget()
        side = QVBoxLayout(column)
        side.setContentsMargins(0, 0, 4, 0)
        side.setSpacing(4)
        side.addLayout(form)
        side.addWidget(self.message)
        side.addWidget(self.cell_title)
        side.addWidget(self.table)
        side.addStretch(1)
        self.side = side_panel(column, SIDE_WIDTH)
        self.resid = GridPlot("resid", self._on_click, self._on_hover)
        self.heads = GridPlot("heads", self._on_click, self._on_hover)
        self.bar = pg.GraphicsLayoutWidget()
        self.bar.setFixedWidth(70)
        self.colour_bar = pg.ColorBarItem(values=(-1, 1), colorMap=pg.colormap.get(DIVERGING),
                                          interactive=False, width=12, label="restored")
        self.bar.addItem(self.colour_bar)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.resid)
        plots.addWidget(self.heads)
        plots.setStretchFactor(0, 3)
        plots.setStretchFactor(1, 1)
        plots.setSizes([600, 200])
        self.splitter = plots
        body = QHBoxLayout()
        body.setSpacing(4)
        body.addWidget(self.side)
        body.addWidget(plots, 1)
        body.addWidget(self.bar)
        self.hover = ElidedLabel(HINT)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addLayout(body, 1)
        layout.addWidget(self.hover)
        self.example.currentIndexChanged.connect(self._on_example)
        self.run_button.clicked.connect(self._on_run)
        self.cancel_button.clicked.connect(self.cancel_requested)
        for edit in (self.clean, self.corrupt, self.clean_answer, self.corrupt_answer):
            edit.returnPressed.connect(self._on_run)
        # A prompt typed by hand no longer matches the example's answers.
        self.clean.textEdited.connect(lambda _t: self.clean_answer.clear())
        self.corrupt.textEdited.connect(lambda _t: self.corrupt_answer.clear())

    # --- asking ------------------------------------------------------------------------
    def set_examples(self, examples: Sequence) -> None:
        self.examples = list(examples)
        self.example.blockSignals(True)
        self.example.clear()
        for e in self.examples:
            self.example.addItem(e.title)
        self.example.addItem("Your own prompts")
        self.example.blockSignals(False)
        self._on_example(0)

    def _on_example(self, index: int) -> None:
        if 0 <= index < len(self.examples):
            e = self.examples[index]
            self.set_prompts(e.clean, e.corrupt, e.clean_answer, e.corrupt_answer)

    def set_prompts(self, clean: str, corrupt: str, clean_answer: str = "",
                    corrupt_answer: str = "") -> None:
        for edit, text in ((self.clean, clean), (self.corrupt, corrupt),
                           (self.clean_answer, clean_answer),
                           (self.corrupt_answer, corrupt_answer)):
            edit.setText(text)
            edit.setCursorPosition(0)  # the prompt's start, not its end, in view

    def _on_run(self) -> None:
        self.run_requested.emit(self.clean.text(), self.corrupt.text(),
                                self.clean_answer.text(), self.corrupt_answer.text())

    def select(self, kind: str, row: int, column: int) -> None:
        """As a click on that cell."""
        self._on_click(kind, int(row), int(column))

    def find_example(self, clean: str, corrupt: str) -> None:
        """Show the bundled example with these prompts in the box, else "Your own"."""
        index = next((i for i, e in enumerate(self.examples)
                      if (e.clean, e.corrupt) == (clean, corrupt)), len(self.examples))
        self.example.blockSignals(True)
        self.example.setCurrentIndex(index)
        self.example.blockSignals(False)

    def _on_click(self, kind: str, row: int, column: int) -> None:
        grid = self.grids.get(kind)
        if grid is None or row not in grid.done:
            return
        for plot in (self.resid, self.heads):
            plot.mark((row, column) if plot.kind == kind else None)
        self.cell_requested.emit(kind, row, column)

    def _on_hover(self, kind: str, hit) -> None:
        grid = self.grids.get(kind)
        if hit is None or grid is None:
            self.hover.setText(HINT)
            return
        row, col, score = hit
        where = self.cell_name(kind, row, col)
        if row not in grid.done:
            self.hover.setText(f"{where}: not computed yet")
            return
        self.hover.setText(f"{where}: restored {score:.2f} · logit difference "
                           f"{grid.raw[row, col]:+.2f} (clean {grid.clean_diff:+.2f}, "
                           f"corrupted {grid.corrupt_diff:+.2f})")

    def cell_name(self, kind: str, row: int, col: int) -> str:
        grid = self.grids[kind]
        if kind == "resid":
            layer = "the final stream" if grid.row_labels[row] == "final" else \
                f"the stream entering block {grid.row_labels[row]}"
            return f"{layer} at position {grid.column_labels[col]}"
        return f"head {col} of block {grid.row_labels[row]}"

    # --- drawing -----------------------------------------------------------------------
    def show_answers(self, clean: str, corrupt: str) -> None:
        """Name the answers a run used where the user left them to the model."""
        for edit, name in ((self.clean_answer, clean), (self.corrupt_answer, corrupt)):
            edit.setPlaceholderText(f"the model's top prediction: {name}")

    def set_busy(self, busy: bool) -> None:
        self.run_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)

    def set_message(self, text: str) -> None:
        self.message.setText(text)

    def clear(self) -> None:
        self.grids = {}
        empty = np.full((1, 1), np.nan)
        for plot in (self.resid, self.heads):
            plot.draw(empty, [], [], 1.0)
            plot.mark(None)
        self.table.clearContents()
        self.hover.setText(HINT)

    def show_grid(self, grid) -> None:
        """Draw ``grid`` (a PatchGrid, rows streaming in); one scale for both maps."""
        self.grids[grid.kind] = grid
        limit = max(limit_for(g.score) for g in self.grids.values())
        for kind, plot in (("resid", self.resid), ("heads", self.heads)):
            g = self.grids.get(kind)
            if g is None:
                continue
            if kind == "resid":
                bottom, top = split_labels(g, self.names)
                plot.draw(g.score, g.row_labels, bottom, limit, top)
            else:
                plot.draw(g.score, g.row_labels, g.column_labels, limit)
        self.colour_bar.setLevels((-limit, limit))

    def show_cell(self, kind: str, row: int, column: int, prediction,
                  names: Sequence[str]) -> None:
        """Top-5 at the last position of the corrupted run, and with the one patch."""
        self.cell_title.setText(f"Patched {self.cell_name(kind, row, column)}: "
                                "the next token after the last position")
        for col, probs in enumerate((prediction.baseline_probabilities[-1],
                                     prediction.probabilities[-1])):
            top = np.argsort(-probs)[:TOP]
            for i, t in enumerate(top):
                name = names[t] if t < len(names) else str(t)
                self.table.setItem(i, col, QTableWidgetItem(f"{name}  {probs[t]:.1%}"))
