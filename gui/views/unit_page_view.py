"""UnitPageView: "What does this unit do?" — one unit's page, beside the layer view.

The most and least active dataset examples (with the unit's map over them, or its
tokens coloured), how its activation is spread over the dataset and over the classes,
what it does to the output, its weights, and for image models an input optimised to
excite it. It only draws a :class:`core.unit_values.UnitPage`; the controller
(:mod:`gui.unit_pages`) fetches it."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QBoxLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea,
                               QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from core.unit_values import FeatureVis, UnitPage
from gui.views.example_strip import Extra, ImageStrip, TokenStrip
from gui.views.unit_colours import strip_scale
from gui.views.labels import ElidedLabel
from gui.views.unit_charts import (GroupChart, HistogramChart, WeightTiles, effect_axis,
                                   effect_brushes, mean_brushes)

NOTE_STYLE = "color: #777; font-size: 11px;"
DEAD_STYLE = "color: #9a6a00; font-weight: bold;"
#: Wider than this, two charts sit side by side.
SIDE_BY_SIDE = 620


def _wrapped(text: str = "", style: str = NOTE_STYLE) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(style)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def _button(text: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    button.setMinimumHeight(24)
    return button


def _heading(text: str) -> QLabel:
    return _wrapped(text, "font-weight: bold; margin-top: 6px;")


class _Pair(QWidget):
    """Two widgets side by side where there is room, else one above the other."""

    def __init__(self, first: QWidget, second: QWidget) -> None:
        super().__init__()
        self.box = QBoxLayout(QBoxLayout.Direction.TopToBottom, self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.box.addWidget(first)
        self.box.addWidget(second)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        wide = event.size().width() >= SIDE_BY_SIDE
        direction = QBoxLayout.Direction.LeftToRight if wide else \
            QBoxLayout.Direction.TopToBottom
        if self.box.direction() != direction:
            self.box.setDirection(direction)


class UnitPageView(QWidget):
    """Draws one unit page; every action is a signal for the controller."""

    back_requested = Signal()
    next_requested = Signal()
    switch_requested = Signal()
    close_requested = Signal()
    look_for_requested = Signal()
    example_clicked = Signal(int)
    drawn = Signal(str, int)          # site, unit of the page now shown

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.page: Optional[UnitPage] = None
        self.switched_off = False
        # Small: at 1024 px the window must keep its size with the page open (issue #12).
        self.setMinimumWidth(240)
        self._build()

    # --- layout ---------------------------------------------------------------------
    def _build(self) -> None:
        self.title = ElidedLabel("No unit yet")
        self.title.setStyleSheet("font-weight: bold; font-size: 13px;")
        # Tool buttons: the three fit a 240-px page (push buttons' padding does not).
        self.back, self.next, self.switch = _button("◀ Back"), _button("Next ▶"), \
            _button("Switch off")
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Close this page")
        self.back.setToolTip("The previous unit of this layer")
        self.next.setToolTip("The next unit of this layer")
        self.switch.setToolTip("Switch this unit off (or on again) in the model, as "
                               "Ctrl+click in the layer view does")
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.close_button)
        buttons = QHBoxLayout()
        for button in (self.back, self.next, self.switch):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.dead = QLabel("never fires on this data")
        self.dead.setStyleSheet(DEAD_STYLE)
        self.dead.setToolTip("It is 0 after its activation function on every evaluation "
                             "example: switching it off changes nothing.")
        self.dead.hide()
        self.summary = _wrapped()
        self.top_heading = _heading("Most active examples")
        self.look_for = QPushButton("What does it look for?")
        self.look_for.setToolTip("Start from noise and change the input, step by step, "
                                 "to excite this unit as much as possible (feature "
                                 "visualisation; Cancel in the status bar)")
        look_row = QHBoxLayout()
        look_row.addWidget(self.look_for)
        look_row.addStretch(1)
        self.look_note = _wrapped()
        self.look_note.hide()
        self.legend = _wrapped()
        self.top_images, self.bottom_images = ImageStrip(), ImageStrip()
        self.top_tokens, self.bottom_tokens = TokenStrip(), TokenStrip()
        self.bottom_heading = _heading("Least active examples")
        self.histogram = HistogramChart()
        self.means = GroupChart("mean")
        self.hist_title, self.means_title = _wrapped(), _wrapped()
        self.effect = GroupChart("change")
        self.effect_caption = _wrapped()
        self.weights = WeightTiles()
        self.weights_caption = _wrapped()
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 8)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.dead)
        layout.addWidget(self.summary)
        layout.addLayout(look_row)
        layout.addWidget(self.look_note)
        layout.addWidget(self.top_heading)
        layout.addWidget(self.legend)
        layout.addWidget(self.top_images)
        layout.addWidget(self.top_tokens)
        layout.addWidget(self.bottom_heading)
        layout.addWidget(self.bottom_images)
        layout.addWidget(self.bottom_tokens)
        layout.addWidget(_heading("Over the whole dataset"))
        hist = self._titled(self.hist_title, self.histogram)
        means = self._titled(self.means_title, self.means)
        layout.addWidget(_Pair(hist, means))
        layout.addWidget(_heading("What it does to the output"))
        layout.addWidget(self.effect_caption)
        layout.addWidget(self.effect)
        layout.addWidget(_heading("Its weights"))
        layout.addWidget(self.weights_caption)
        layout.addWidget(self.weights)
        layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidget(body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.back.clicked.connect(self.back_requested)
        self.next.clicked.connect(self.next_requested)
        self.switch.clicked.connect(self.switch_requested)
        self.close_button.clicked.connect(self.close_requested)
        self.look_for.clicked.connect(self.look_for_requested)
        for strip in (self.top_images, self.bottom_images, self.top_tokens,
                      self.bottom_tokens):
            strip.example_clicked.connect(self.example_clicked)

    @staticmethod
    def _titled(title: QLabel, chart: QWidget) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        layout.addWidget(title)
        layout.addWidget(chart)
        return box

    # --- drawing --------------------------------------------------------------------
    def show_page(self, page: UnitPage, names: Sequence[str], n_examples: int,
                  switched_off: bool, images: bool) -> None:
        """Draw ``page``; ``names`` are the class (or vocabulary) names its labels index,
        ``images`` whether the model reads pictures (feature visualisation)."""
        self.page = page
        noun = page.unit_name
        self.title.setText(f"{_layer(page.site)} · {noun} {page.unit} of {page.n_units}")
        self.back.setEnabled(page.unit > 0)
        self.next.setEnabled(page.unit < page.n_units - 1)
        self.dead.setVisible(page.dead)
        self.set_switched_off(switched_off)
        self.summary.setText(
            f"Its value on each of the {n_examples} evaluation examples is {page.statistic}"
            f": {page.mean:.3g} on average, at most {page.maximum:.3g}.")
        k = len(page.top.indices)
        tokens = page.top.pictures is None
        self.top_heading.setText(f"Most active examples (top {k})")
        self.bottom_heading.setText(f"Least active examples (bottom {len(page.bottom.indices)})")
        scale = strip_scale(page.top, page.bottom)
        under = ("Under each: its label and the model's answer (red if wrong), its value, "
                 "#example; click one to load it as the input.")
        if tokens:
            guesses = bool((page.top.predicted >= 0).any())
            self.legend.setText(f"Each token coloured by the {noun}'s value there "
                                f"({scale.words()}); the framed token is its peak. Above "
                                "each row: the value, the token and the example" +
                                (", the next token and the model's guess (red if wrong)"
                                 if guesses else "") + ". Click a row to load it as the "
                                "input.")
        elif page.top.maps is not None:
            self.legend.setText(f"The {noun}'s activation map over each input "
                                f"({scale.words()}). {under}")
        else:
            self.legend.setText(under)
        for strip, shown in ((self.top_images, not tokens), (self.bottom_images, not tokens),
                             (self.top_tokens, tokens), (self.bottom_tokens, tokens)):
            strip.setVisible(shown)
        pair = ((self.top_tokens, self.bottom_tokens) if tokens
                else (self.top_images, self.bottom_images))
        pair[0].set_strip(page.top, scale, names)
        pair[1].set_strip(page.bottom, scale, names)
        self.top_images.set_extra(None)
        self.look_for.setVisible(images)
        self.look_for.setEnabled(images)
        self.look_note.hide()
        self.hist_title.setText(f"How often each value occurs ({page.statistic}; "
                                "dashed: the mean)")
        self.histogram.show_counts(page.histogram, page.edges, page.mean, "value")
        self.means_title.setText(f"Its mean per {page.group_label}")
        self.means.show_values(page.group_means, page.group_names,
                               mean_brushes(page.group_means), "mean", page.group_label)
        self._show_effect(page)
        self._show_weights(page)
        self.scroll.verticalScrollBar().setValue(0)
        self.drawn.emit(page.site, page.unit)

    def _show_effect(self, page: UnitPage) -> None:
        effect = page.effect
        self.effect.setVisible(effect is not None)
        if effect is None:
            self.effect_caption.setText("Not measured for this unit.")
            return
        quiet = not np.any(np.abs(np.asarray(effect.values, float)) > 1e-9)
        self.effect_caption.setText(effect.caption + (" Nothing changes: no class gains or "
                                                      "loses." if quiet else ""))
        self.effect.show_values(effect.values, effect.names, effect_brushes(effect),
                                effect_axis(effect),
                                "class" if effect.kind == "direct weights" else "")

    def _show_weights(self, page: UnitPage) -> None:
        weights = page.weights
        if weights is None or not weights.images:
            self.weights_caption.setText(page.weights_note or "No weights to draw.")
            self.weights.set_weights(None)
            self.weights.hide()
            return
        self.weights.set_weights(weights)
        titles = (f" Tiles are titled by the number after “{self.weights.prefix.strip()}”."
                  if self.weights.prefix else "")
        scale = ("each tile on its own scale" if self.weights.per_tile() else
                 f"one scale (±{self.weights.scale:.3g}) for all tiles")
        self.weights_caption.setText(f"{weights.caption}{titles} Drawn blue for negative, "
                                     f"red for positive, {scale}.")
        self.weights.show()

    def set_switched_off(self, off: bool) -> None:
        self.switched_off = off
        self.switch.setText("Switch on" if off else "Switch off")
        self.switch.setStyleSheet("color: #d0312d;" if off else "")

    # --- what does it look for? -----------------------------------------------------
    def show_looking(self, text: str) -> None:
        """Feature visualisation under way (``text``: its progress)."""
        self.look_for.setEnabled(False)
        self.look_note.setText(text)
        self.look_note.show()

    def show_feature(self, vis: FeatureVis) -> None:
        """The optimised input as the first cell of the top examples, and how it did."""
        self.look_for.setEnabled(True)
        beat = vis.exceeded
        verdict = ("beats every example" if beat else "could not beat the dataset's best "
                   "example")
        mapped = self.page is not None and self.page.top.maps is not None
        what = "mean over positions" if mapped else "value"
        self.top_images.set_extra(Extra(vis.picture, ("optimised", (
            "mean " if mapped else "") + f"{vis.activation:.3g}"),
            "#e0a800" if beat else "#9a9a9a"))
        self.look_note.setText(
            f"What it looks for (framed, first below): an input optimised in {vis.steps} "
            f"steps ({vis.regularisers}) to raise the {self._noun()}'s {what}. Activation "
            f"{vis.activation:.3g} vs dataset max {vis.dataset_max:.3g}: it {verdict}."
            + (" (The examples are ranked by their peak, not the mean.)" if mapped else ""))
        self.look_note.show()

    def _noun(self) -> str:
        return self.page.unit_name if self.page is not None else "unit"

    def show_look_failed(self, text: str) -> None:
        self.look_for.setEnabled(True)
        self.look_note.setText(text)
        self.look_note.show()


def _layer(site: str) -> str:
    """``block1.attn.heads`` reads as the layer the tree shows, ``block1.attn``."""
    return site.removesuffix(".heads")
