"""ExperimentsPanel: the ablation table — what was removed → accuracy — recorded as the
user works, exportable as CSV."""

from __future__ import annotations

import csv
from typing import Optional

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from core.analysis.evaluate import EvalResult

COLUMNS = ("#", "model", "what was removed or changed", "score", "Δ vs intact", "loss")


def _score(result: EvalResult, value: float) -> str:
    return f"{value:.3f}" if result.metric == "cosine" else f"{100 * value:.1f}%"


class ExperimentsPanel(QWidget):
    """Owns the experiment table; ``record`` appends one evaluation."""

    recorded = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.rows: list[tuple[str, ...]] = []
        self._last: Optional[tuple] = None
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
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

    def record(self, model: str, result: EvalResult) -> None:
        """Add ``result`` unless it repeats the previous row (same model and changes)."""
        key = (model, result.ablations)
        if key == self._last:
            return
        self._last = key
        what = "; ".join(a.label() for a in result.ablations) or "nothing (intact model)"
        row = (str(len(self.rows) + 1), model, what, _score(result, result.score),
               f"{100 * result.delta:+.1f}" if result.metric == "accuracy"
               else f"{result.delta:+.3f}", f"{result.loss:.3f}")
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
        self._last = None
        self.table.setRowCount(0)

    def export_csv(self, path: str) -> None:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows(self.rows)

    @Slot()
    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the ablation table",
                                              "ablations.csv", "CSV files (*.csv)")
        if path:
            self.export_csv(path)
