"""TokenPredictionView: the model's next-token guess after every token of the input."""

from __future__ import annotations

import html
from typing import Optional, Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QVBoxLayout, QWidget

from core.analysis.attention import induction_targets

RIGHT, WRONG, FREE = "#4cc38a", "#ff6b63", "#9a9a9a"
CELL_SPACING = 2


def expected_next(ids: np.ndarray) -> np.ndarray:
    """What induction predicts after each position: the token that followed the most
    recent earlier occurrence of the current token (-1 where there is none)."""
    hits = induction_targets(ids)
    out = np.full(len(ids), -1)
    for t in range(len(ids)):
        cols = np.flatnonzero(hits[t])
        if cols.size:
            out[t] = ids[cols[-1]]
    return out


class TokenPredictionView(QWidget):
    """Owns the row of tokens with the predicted next token under each."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.headline = QLabel("Prediction: —")
        self.headline.setStyleSheet("font-size: 15px; font-weight: bold;")
        self.headline.setWordWrap(True)
        self.table = QLabel("")
        self.table.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        #: (token cell, prediction cell) HTML per position, laid out in as many rows as
        #: the width needs: all 25 tokens are on screen, none behind a scroll bar.
        self.cells: list[tuple[str, str]] = []
        #: The widest text of any cell, in pixels, to know how many fit in a row.
        self.cell_width = 0
        self.per_row = 0
        self.note = QLabel("Green/red: right/wrong where the letter appeared before, so "
                           "induction knows what comes next. Italic: unsure (under 50%). "
                           "* changed by the ablation. Point at the table: probabilities.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {FREE}; font-size: 11px;")
        # The rows wrap to the width; should they not fit in height, they scroll (down,
        # never sideways) rather than widening the window.
        scroll = QScrollArea()
        scroll.setWidget(self.table)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area = scroll
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.headline)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.note)
        self.correct = 0
        self.scored = 0

    def show_prediction(self, ids: np.ndarray, probs: np.ndarray, baseline: np.ndarray,
                        vocab: Sequence[str]) -> None:
        """``ids`` (T,), ``probs``/``baseline`` (T, V) next-token probabilities."""
        self.note.show()
        pred, was = probs.argmax(-1), baseline.argmax(-1)
        want = expected_next(np.asarray(ids))
        self.cells = []
        self.correct = self.scored = 0
        tips = []
        for t, tok in enumerate(ids):
            colour = FREE
            if want[t] >= 0:
                self.scored += 1
                ok = pred[t] == want[t]
                self.correct += int(ok)
                colour = RIGHT if ok else WRONG
            mark = "*" if pred[t] != was[t] else ""
            p = float(probs[t, pred[t]])
            # One letter per cell (the probability is in the tooltip), so 25 positions
            # fit in two rows beside the input instead of 11 and a scroll bar.
            style = f"color:{colour};" + ("" if p >= 0.5 else "font-style:italic;")
            self.cells.append((
                f"<td align='center'><b>{html.escape(vocab[tok])}</b></td>",
                f"<td align='center' style='{style}'>{html.escape(vocab[pred[t]])}{mark}</td>"))
            tips.append(f"{t}: after {vocab[tok]} → {vocab[pred[t]]} ({p:.0%}){mark}")
        self.table.setToolTip("\n".join(tips))
        bold = QFont(self.table.font())
        bold.setBold(True)
        texts = [vocab[t] for t in ids] + [f"{vocab[q]}*" for q in pred]
        self.cell_width = max(QFontMetrics(bold).horizontalAdvance(t) for t in texts)
        self.table.setWordWrap(False)
        self.per_row = 0
        self._lay_out()
        if self.scored:
            self.headline.setText(f"Induction guesses right {self.correct} of {self.scored}"
                                  " times on this input")
        else:
            self.headline.setText("No letter repeats yet: nothing to copy from")

    def show_embedding(self, embedding: np.ndarray, baseline: np.ndarray) -> None:
        """An embedding model's output: how far the ablations moved it."""
        cos = float(embedding @ baseline / max(np.linalg.norm(embedding) *
                                               np.linalg.norm(baseline), 1e-12))
        self.scored, self.correct = 0, 0
        self.note.hide()
        self.headline.setText(f"Sentence embedding: cosine {cos:.3f} to the intact model's")
        self.table.setText(f"The model turns the sentence into {len(embedding)} numbers "
                           "(the mean of its token vectors, normalised). 1.000 means the "
                           "ablations changed nothing; lower means they moved the meaning.")
        self.cells = []
        self.table.setToolTip("")
        self.table.setWordWrap(True)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self.cells:
            self._lay_out()

    def _fit(self) -> int:
        """How many positions fit across the visible width."""
        cell = self.cell_width + CELL_SPACING + 1
        head = QFontMetrics(self.table.font()).horizontalAdvance("next?") + 2 * CELL_SPACING
        width = self.scroll_area.viewport().width() - head - 6
        return max(1, width // cell)

    def _lay_out(self) -> None:
        per_row = self._fit()
        if per_row == self.per_row:
            return
        self.per_row = per_row
        rows = []
        for start in range(0, len(self.cells), per_row):
            chunk = self.cells[start:start + per_row]
            rows.append("<tr><td>token</td>" + "".join(c[0] for c in chunk) + "</tr>"
                        "<tr><td>next?</td>" + "".join(c[1] for c in chunk) + "</tr>")
        self.table.setText(f"<table cellspacing='{CELL_SPACING}'>" + "".join(rows) +
                           "</table>")
