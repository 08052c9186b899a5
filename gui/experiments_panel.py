"""ExperimentsPanel: the ablation table — what was removed → accuracy — recorded as the
user works, exportable as CSV."""

from __future__ import annotations

import csv
from typing import Optional

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from core.analysis.evaluate import EvalResult
from gui.ablation_panel import short_label

COLUMNS = ("#", "model", "what was removed or changed", "score", "Δ vs intact", "loss",
           "dataset")
#: The CSV holds numbers, with their unit in the header, not "97.5%" strings.
CSV_COLUMNS = ("#", "model", "what was removed or changed",
               "score (accuracy in %, or cosine similarity)",
               "Δ vs intact (points, or cosine)", "loss", "dataset", "score unit")
INTACT = "nothing (intact model)"


def _score(result: EvalResult, value: float) -> str:
    return f"{value:.3f}" if result.metric == "cosine" else f"{100 * value:.1f}%"


def _unit(result: EvalResult) -> str:
    """What the score and Δ columns count for this row."""
    return "cosine similarity" if result.metric == "cosine" else "accuracy (%, Δ in points)"


class ExperimentsPanel(QWidget):
    """Owns the experiment table; ``record`` appends one evaluation."""

    recorded = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, ...]] = []
        #: The same rows as numbers, for the CSV.
        self.values: list[tuple] = []
        self._last: Optional[tuple] = None
        #: (model, dataset) pairs whose intact row is in the table: one row each, however
        #: often the user switches back to that model.
        self._intact: set[tuple[str, str]] = set()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(60)
        self.export_button = QPushButton("Export CSV…")
        self.clear_button = QPushButton("Clear")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.clear_button.clicked.connect(self.clear)

    def record(self, model: str, result: EvalResult, dataset: str = "") -> None:
        """Add ``result`` unless it repeats the previous row (same model, data and
        changes) or is an intact model already in the table for that model and data."""
        key = (model, dataset, result.ablations)
        if key == self._last:
            return
        if not result.ablations:
            if (model, dataset) in self._intact:
                self._last = key
                return
            self._intact.add((model, dataset))
        self._last = key
        what = "; ".join(a.label() for a in result.ablations) or INTACT
        # The table shows unit runs folded ("conv2:0–31"); the CSV keeps every unit.
        shown = "; ".join(short_label(a) for a in result.ablations) or INTACT
        accuracy = result.metric == "accuracy"
        delta = f"{100 * result.delta:+.1f}" if accuracy else f"{result.delta:+.3f}"
        row = (str(len(self.rows) + 1), model, shown, _score(result, result.score), delta,
               f"{result.loss:.3f}", dataset)
        scale = 100 if accuracy else 1
        self.values.append((len(self.rows) + 1, model, what,
                            round(scale * result.score, 6), round(scale * result.delta, 6),
                            round(result.loss, 6), dataset, _unit(result)))
        self.rows.append(row)
        r = self.table.rowCount()
        self.table.insertRow(r)
        for c, value in enumerate(row):
            self.table.setItem(r, c, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        self.table.scrollToBottom()
        self.recorded.emit(len(self.rows))

    @Slot()
    def clear(self) -> None:
        self.rows.clear()
        self.values.clear()
        self._intact.clear()
        self._last = None
        self.table.setRowCount(0)

    def export_csv(self, path: str) -> None:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(self.values)

    @Slot()
    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the ablation table",
                                              "ablations.csv", "CSV files (*.csv)")
        if path:
            self.export_csv(path)
