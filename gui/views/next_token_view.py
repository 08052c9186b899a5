"""NextTokenView: what a language model would write next — the top 5 next tokens after
the selected position of the prompt (the last one unless you click another), and every
prompt token with the model's guess for the next one under it."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from core.kinds import ModelKind
from gui.views.token_chips import TokenChips, short_piece

TOP = 5
#: Dark enough to read as text on the light panel; FREE is the notes' grey.
RIGHT, WRONG, FREE = "#23955c", "#d9362e", "#8a8a8a"
NOW, INTACT = "#4c9be8", "#8a8a8a"


def reads_word_pieces(info) -> bool:
    """A token model whose vocabulary is word pieces, not single letters: a language
    model, which reads prompts (the induction toy's letters get their own table)."""
    return info.kind is ModelKind.TOKENS and any(len(name) > 1 for name in info.class_names)


def top_k(probs: np.ndarray, k: int = TOP) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most likely next tokens per position of ``probs`` (T, V), most likely
    first: ids (T, k) and their probabilities (T, k). A partition, not a sort of the
    whole vocabulary: 64 positions x 49,152 pieces."""
    k = min(k, probs.shape[-1])
    part = np.argpartition(-probs, k - 1, axis=-1)[:, :k]
    p = np.take_along_axis(probs, part, -1)
    order = np.argsort(-p, axis=-1, kind="stable")
    return np.take_along_axis(part, order, -1), np.take_along_axis(p, order, -1)


def percent(p: float) -> str:
    """A probability as people read it: 62%, 3.4%, <0.1%."""
    if p >= 0.095:
        return f"{p:.0%}"
    return f"{100 * p:.1f}%" if p >= 0.001 else "<0.1%"


@dataclass(frozen=True)
class TopTokens:
    """The top next tokens of every position, now and in the intact model."""

    ids: np.ndarray          # (T, k) most likely first (with the ablations)
    probs: np.ndarray        # (T, k)
    intact: np.ndarray       # (T, k) the intact model's probability of the same tokens
    intact_top: np.ndarray   # (T,) the intact model's own first choice
    intact_top_p: np.ndarray  # (T,)
    ablated: bool

    @classmethod
    def of(cls, probs: np.ndarray, baseline: np.ndarray) -> "TopTokens":
        ids, p = top_k(probs)
        ablated = not np.array_equal(probs, baseline)
        intact = np.take_along_axis(baseline, ids, -1)
        top = baseline.argmax(-1)
        return cls(ids, p, intact, top, baseline[np.arange(len(top)), top], ablated)


class TopTokenBars(QWidget):
    """The top next tokens of one position as bars: blue with the ablations, grey
    behind it the intact model (only drawn when something is switched off)."""

    ROW = 19

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        #: (piece, probability now, probability in the intact model)
        self.rows: list[tuple[str, float, float]] = []
        self.ablated = False
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.ROW * TOP)

    def set_rows(self, rows: Sequence[tuple[str, float, float]], ablated: bool) -> None:
        self.rows, self.ablated = list(rows), ablated
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(240, self.ROW * TOP)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        # Narrow: the panel is ~110 px inside its scroll area at 1024x640.
        return QSize(60, self.ROW * TOP)

    def value_text(self, now: float, intact: float, room: bool = True) -> str:
        both = self.ablated and room
        return f"{percent(now)} ({percent(intact)})" if both else percent(now)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        metrics = QFontMetrics(self.font())
        text_colour = self.palette().windowText().color()
        # The pieces take at most 45% of a narrow panel, so the bars keep some length.
        room = max(int(0.45 * self.width()), 30)
        pieces = [metrics.elidedText(short_piece(piece), Qt.TextElideMode.ElideRight, room)
                  for piece, _, _ in self.rows]
        label_w = max([metrics.horizontalAdvance(p) for p in pieces] + [20]) + 6
        def widest(room: bool) -> int:
            return max([metrics.horizontalAdvance(self.value_text(n, i, room))
                        for _, n, i in self.rows] + [20]) + 6

        # The intact value (in brackets) only where it fits beside a bar; the tooltips
        # of the chips have it too.
        room = label_w + widest(True) + 30 <= self.width()
        value_w = widest(room)
        bar_x, bar_w = label_w, max(self.width() - label_w - value_w, 10)
        for row, (piece, now, intact) in enumerate(self.rows):
            y = row * self.ROW
            painter.setPen(text_colour)
            painter.drawText(QRectF(0, y, label_w - 4, self.ROW),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             pieces[row])
            if self.ablated:
                painter.fillRect(QRectF(bar_x, y + 2, bar_w * intact, self.ROW - 4),
                                 QColor(INTACT))
            inset = 6 if self.ablated else 3
            painter.fillRect(QRectF(bar_x, y + inset, max(bar_w * now, 1), self.ROW - 2 * inset),
                             QColor(NOW))
            painter.setPen(text_colour)
            painter.drawText(QRectF(bar_x + bar_w + 4, y, value_w, self.ROW),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             self.value_text(now, intact, room))
        painter.end()


class NextTokenView(QWidget):
    """Owns the headline, the bars of the selected position and the token chips.

    ``position_selected(t)``: the user clicked the token at position ``t``."""

    position_selected = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.headline = QLabel("Next token: —")
        self.headline.setStyleSheet("font-size: 15px; font-weight: bold;")
        self.headline.setWordWrap(True)
        self.score = QLabel("")
        self.score.setWordWrap(True)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("font-size: 11px;")
        self.bars = TopTokenBars()
        self.chips = TokenChips()
        self.chips.clicked.connect(self.select_position)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {FREE}; font-size: 11px;")
        # Under the headline everything scrolls, down and never sideways: in a small
        # window (the panel is ~130 px wide at 1024x640) nothing is squeezed on top of
        # anything else, and the chips wrap to the width.
        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(3)
        for widget in (self.score, self.caption, self.bars, self.chips, self.note):
            column.addWidget(widget)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area = scroll
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.headline)
        layout.addWidget(scroll, 1)
        self.vocab: Sequence[str] = ()
        self.ids = np.zeros(0, np.int64)
        self.targets: Optional[np.ndarray] = None
        self.top: Optional[TopTokens] = None
        #: The position whose top 5 the bars show (the last unless one was clicked).
        self.selected = -1
        self.correct = self.scored = 0

    def show_prediction(self, ids: np.ndarray, probs: np.ndarray, baseline: np.ndarray,
                        vocab: Sequence[str], targets: Optional[np.ndarray] = None) -> None:
        """``ids`` (T,) the prompt; ``probs``/``baseline`` (T, V) next-token
        probabilities with and without the ablations; ``targets`` (T,) the right next
        token where it is known (-1 elsewhere), e.g. on the repeat of an example."""
        ids = np.asarray(ids)
        same_prompt = np.array_equal(ids, self.ids)
        self.ids, self.vocab = ids, vocab
        self.targets = None if targets is None or len(targets) != len(ids) else np.asarray(targets)
        self.top = TopTokens.of(np.asarray(probs), np.asarray(baseline))
        if not same_prompt or not 0 <= self.selected < len(ids):
            self.selected = len(ids) - 1
        self.chips.set_count(len(ids))
        for t, chip in enumerate(self.chips.chips):
            chip.show_guess(*self._chip(t))
            chip.setToolTip(self._tooltip(t))
        self.chips.select(self.selected)
        self._headline()
        self._show_bars()

    # --- what is written ---------------------------------------------------------------
    def piece(self, token: int) -> str:
        return self.vocab[int(token)] if 0 <= int(token) < len(self.vocab) else f"#{token}"

    def _chip(self, t: int) -> tuple[str, str, str, bool]:
        top = self.top
        guess = int(top.ids[t, 0])
        mark = "*" if guess != int(top.intact_top[t]) else ""
        colour = ""  # the text's own colour: only a scored guess is green or red
        if self.targets is not None and self.targets[t] >= 0:
            colour = RIGHT if guess == int(self.targets[t]) else WRONG
        return (self.piece(self.ids[t]), self.piece(guess) + mark, colour,
                float(top.probs[t, 0]) < 0.5)

    def _tooltip(self, t: int) -> str:
        top = self.top
        rows = "".join(
            f"<tr><td>{html.escape(self.piece(i))}</td><td align='right'>{percent(p)}</td>"
            + (f"<td align='right' style='color:{INTACT}'>intact {percent(q)}</td>"
               if top.ablated else "") + "</tr>"
            for i, p, q in zip(top.ids[t], top.probs[t], top.intact[t]))
        want = ""
        if self.targets is not None and self.targets[t] >= 0:
            want = f"<br>right answer: {html.escape(self.piece(self.targets[t]))}"
        return (f"<b>after {html.escape(self.piece(self.ids[t]))}</b> (position {t + 1} "
                f"of {len(self.ids)})<table>{rows}</table>{want}")

    def _headline(self) -> None:
        top, last = self.top, len(self.ids) - 1
        guess = int(top.ids[last, 0])
        text = f"Next token: {self.piece(guess)} {percent(float(top.probs[last, 0]))}"
        if top.ablated:
            was = int(top.intact_top[last])
            text += (f" (intact: {percent(float(top.intact[last, 0]))})" if was == guess else
                     f" (intact: {self.piece(was)} {percent(float(top.intact_top_p[last]))})")
        self.headline.setText(text)
        notes = ["Under each token: the model's guess for the next one (italic: under 50%). "
                 "Point at a token for its top 5; click it to show them above."]
        self.correct = self.scored = 0
        if self.targets is not None:
            scored = self.targets >= 0
            self.scored = int(scored.sum())
            self.correct = int((top.ids[:, 0] == self.targets)[scored].sum())
        if self.scored:
            self.score.setText(f"Right at <span style='color:{RIGHT}'>{self.correct}</span> "
                               f"of {self.scored} scored positions")
            notes.append("Green/red: right/wrong where the evaluation set knows the next "
                         "token.")
        self.score.setVisible(bool(self.scored))
        if top.ablated:
            notes.append("* the ablation changed the guess. Bars: blue now, grey (and in "
                         "brackets) the intact model.")
        self.note.setText(" ".join(notes))

    def _show_bars(self) -> None:
        t, top = self.selected, self.top
        where = "the last token" if t == len(self.ids) - 1 else f"position {t + 1}"
        self.caption.setText(f"Top {TOP} after {self.piece(self.ids[t])} ({where} of "
                             f"{len(self.ids)}):")
        self.bars.set_rows([(self.piece(i), float(p), float(q))
                            for i, p, q in zip(top.ids[t], top.probs[t], top.intact[t])],
                           top.ablated)

    @Slot(int)
    def select_position(self, t: int) -> None:
        """Show position ``t``'s top 5 in the bars (and tell other views)."""
        if self.top is None or not 0 <= t < len(self.ids):
            return
        self.selected = t
        self.chips.select(t)
        self._show_bars()
        self.position_selected.emit(t)
