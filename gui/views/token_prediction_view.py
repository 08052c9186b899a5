"""TokenPredictionView: the model's next-token guess after every token of the input."""

from __future__ import annotations

import html
from typing import Optional, Sequence

import numpy as np
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from core.analysis.attention import induction_targets

RIGHT, WRONG, FREE = "#4cc38a", "#ff6b63", "#9a9a9a"


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
        self.note = QLabel("Green/red: the letter appeared before, so induction says what "
                           "comes next. * changed by the ablation.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {FREE}; font-size: 11px;")
        # Up to 25 tokens do not fit beside the input: scroll instead of widening the window.
        scroll = QScrollArea()
        scroll.setWidget(self.table)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
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
        cells_tok, cells_pred = [], []
        self.correct = self.scored = 0
        for t, tok in enumerate(ids):
            colour = FREE
            if want[t] >= 0:
                self.scored += 1
                ok = pred[t] == want[t]
                self.correct += int(ok)
                colour = RIGHT if ok else WRONG
            mark = "*" if pred[t] != was[t] else ""
            cells_tok.append(f"<td align='center'><b>{html.escape(vocab[tok])}</b></td>")
            cells_pred.append(f"<td align='center' style='color:{colour}'>"
                              f"{html.escape(vocab[pred[t]])}{mark}<br>"
                              f"<small>{probs[t, pred[t]]:.0%}</small></td>")
        self.table.setText(
            "<table cellspacing='4'><tr><td>token</td>" + "".join(cells_tok) + "</tr>"
            "<tr><td>next?</td>" + "".join(cells_pred) + "</tr></table>")
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
        self.table.setWordWrap(True)
