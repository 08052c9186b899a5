"""UnitPageView: "What does this unit do?" — one unit's page, beside the layer view.

The most and least active dataset examples (with the unit's map over them, or its
tokens coloured), how its activation is spread over the dataset and over the classes,
what it does to the output, its weights, and for image models an input optimised to
excite it. It only draws a :class:`core.unit_values.UnitPage`; the controller
(:mod:`gui.unit_pages`) fetches it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QBoxLayout, QFileDialog, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QSizePolicy, QToolButton, QVBoxLayout, QWidget)

from core.unit_values import ExampleStrip, FeatureVis, UnitPage
from gui.export import export_view
from gui.views.example_strip import Extra, ImageStrip, TokenStrip, name_of
from gui.views.unit_colours import sig, strip_scale
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
        self.names: tuple[str, ...] = ()
        self.vis: Optional[FeatureVis] = None
        self._look_scroll = 0       # the page's scroll position when Look for was pressed
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
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save this page as a PNG and what it shows as CSV "
                                      "files beside it: the top and bottom examples, the "
                                      "histogram, the mean per class and the effect")
        self.export_button.setEnabled(False)
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
        # Here, not beside the title: there it cut a 270-px page's title short.
        look_row.addWidget(self.export_button)
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
        self.export_button.clicked.connect(self._on_export_clicked)
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
                  switched_off: bool, images: bool, unit_label: str = "") -> None:
        """Draw ``page``; ``names`` are the class (or vocabulary) names its labels index,
        ``images`` whether the model reads pictures (feature visualisation),
        ``unit_label`` what the unit stands for where it has a name ("class 3" for a
        neuron of the output layer)."""
        self.page, self.names, self.vis = page, tuple(names), None
        noun = page.unit_name
        named = f" ({unit_label})" if unit_label else ""
        self.title.setText(f"{_layer(page.site)} · {noun} {page.unit} of {page.n_units}"
                           f"{named}")
        self.title.setToolTip(self.title.text())
        self.export_button.setEnabled(True)
        self.back.setEnabled(page.unit > 0)
        self.next.setEnabled(page.unit < page.n_units - 1)
        self.dead.setVisible(page.dead)
        self.set_switched_off(switched_off)
        self.summary.setText(
            f"Its value on each of the {n_examples} evaluation examples is {page.statistic}"
            f": {sig(page.mean)} on average, at most {sig(page.maximum)}.")
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
        group = _group(page)
        self.means_title.setText(f"Its mean per {group} ({page.statistic})")
        self.means.show_values(page.group_means, page.group_names,
                               mean_brushes(page.group_means), "mean", group)
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
                 f"one scale (±{sig(self.weights.scale)}) for all tiles")
        self.weights_caption.setText(f"{weights.caption}{titles} Drawn blue for negative, "
                                     f"red for positive, {scale}.")
        self.weights.show()

    def set_switched_off(self, off: bool) -> None:
        self.switched_off = off
        self.switch.setText("Switch on" if off else "Switch off")
        self.switch.setStyleSheet("color: #d0312d;" if off else "")

    # --- what does it look for? -----------------------------------------------------
    def show_looking(self, text: str) -> None:
        """Feature visualisation under way (``text``: its progress). The page stays
        where it is: the disabled button's focus would otherwise move on down the page
        and the scroll area would follow it."""
        bar = self.scroll.verticalScrollBar()
        where = bar.value()
        if self.look_for.isEnabled():    # just pressed: where the reader was
            self._look_scroll = where
        if self.look_for.hasFocus():
            self.scroll.setFocus(Qt.FocusReason.OtherFocusReason)
        self.look_for.setEnabled(False)
        self.look_note.setText(text)
        self.look_note.show()
        bar.setValue(where)

    def show_feature(self, vis: FeatureVis) -> None:
        """The optimised input as the first cell of the top examples, and how it did.
        The page keeps its place, scrolled only as far as shows the optimised input
        (not at all if the reader scrolled elsewhere while it ran)."""
        self.vis = vis
        self.look_for.setEnabled(True)
        mapped = self.page is not None and self.page.top.maps is not None
        what = "mean over positions" if mapped else "value"
        verdict, lit = self._verdict(vis, mapped)
        self.top_images.set_extra(Extra(vis.picture, ("optimised", (
            "mean " if mapped else "") + sig(vis.activation)),
            "#e0a800" if lit else "#9a9a9a"))
        self.look_note.setText(
            f"What it looks for (framed, first below): an input optimised in {vis.steps} "
            f"steps ({vis.regularisers}) to raise the {self._noun()}'s {what}. {verdict}"
            + (" (The examples are ranked by their peak, not the mean.)" if mapped else ""))
        self.look_note.show()
        # Scrolled away while it ran: the reader's place is kept as it is.
        if self.scroll.verticalScrollBar().value() == self._look_scroll:
            self._reveal_feature()

    def _verdict(self, vis: FeatureVis, mapped: bool) -> tuple[str, bool]:
        """What the optimised input's activation means, in words, and whether it lit
        the unit up (beat the data, or fired where the data never makes it fire)."""
        act, best = sig(vis.activation), sig(vis.dataset_max)
        page = self.page
        best_words = "best example's mean" if mapped else "best example"
        if page is not None and (page.dead or page.maximum <= 0):
            never = f"It never fires on the data ({best_words} {best}); the optimised input " \
                    f"reaches {act} — "
            if vis.activation > 0:
                return never + "above zero: an input unlike the data makes it fire.", True
            higher = "higher than every example, but " if vis.activation > vis.dataset_max \
                else ""
            return never + higher + "still below zero, so it does not fire either.", False
        against = f"Activation {act} vs dataset max {best}: "
        if vis.exceeded and vis.activation <= 0:
            return against + "higher than every example, but still below zero.", False
        if vis.exceeded:
            return against + "it beats every example.", True
        return against + "it could not beat the dataset's best example.", False

    def _reveal_feature(self) -> None:
        """Scroll (as little as needed) so the optimised input's cell is in view."""
        strip = self.top_images
        rects = strip.cell_rects(strip.width())
        if strip.extra is None or not rects or not strip.isVisible():
            return
        body = self.scroll.widget()
        body.layout().activate()        # the taller note and strip are laid out now
        top = strip.mapTo(body, rects[0].topLeft()).y()
        bottom = strip.mapTo(body, rects[0].bottomLeft()).y()
        bar = self.scroll.verticalScrollBar()
        shown = self.scroll.viewport().height()
        value = bar.value()
        if bottom > value + shown:
            value = bottom - shown + 8
        if top < value:
            value = max(top - 8, 0)
        if value != bar.value():
            bar.setValue(value)

    def _noun(self) -> str:
        return self.page.unit_name if self.page is not None else "unit"

    def show_look_failed(self, text: str) -> None:
        self.look_for.setEnabled(True)
        self.look_note.setText(text)
        self.look_note.show()

    # --- export ---------------------------------------------------------------------
    def tables(self) -> dict[str, tuple[tuple[str, ...], list]]:
        """What the page shows, as numbers: ``{name: (header, rows)}`` — "examples"
        (the optimised input, then the top and bottom examples), "histogram", "means"
        and "effect" (where it was measured)."""
        page = self.page
        if page is None:
            return {}
        rows = []
        vis = self.vis
        if vis is not None and self.top_images.extra is not None:
            rows.append(("optimised", "", "", f"{vis.activation:.6g}", "", "", ""))
        for which, strip in (("top", page.top), ("bottom", page.bottom)):
            rows.extend(self._example_rows(which, strip))
        group = _group(page)
        tables = {
            "examples": (("strip", "rank", "example", "value", "position", "label",
                          "prediction"), rows),
            "histogram": (("bin low", "bin high", "count"),
                          [(f"{lo:.6g}", f"{hi:.6g}", int(n)) for lo, hi, n in
                           zip(page.edges[:-1], page.edges[1:], page.histogram)]),
            "means": ((group, f"mean ({page.statistic})"),
                      [(name, "" if not np.isfinite(v) else f"{v:.6g}")
                       for name, v in zip(page.group_names, page.group_means)]),
        }
        effect = page.effect
        if effect is not None:
            tables["effect"] = (("class" if effect.kind == "direct weights" else group,
                                 effect_axis(effect)),
                                [(name, f"{float(v):.6g}")
                                 for name, v in zip(effect.names, effect.values)])
        return tables

    def _example_rows(self, which: str, strip: ExampleStrip) -> list:
        rows = []
        for rank in range(len(strip.indices)):
            label, pred = int(strip.labels[rank]), int(strip.predicted[rank])
            rows.append((which, rank + 1, int(strip.indices[rank]),
                         f"{float(strip.values[rank]):.6g}", int(strip.positions[rank]),
                         name_of(self.names, label) if label >= 0 else "",
                         name_of(self.names, pred) if pred >= 0 else ""))
        return rows

    def export(self, png_path: str) -> Optional[tuple[Path, ...]]:
        """Save the whole page (scrolled-away parts too) as ``png_path`` and its numbers
        as CSV files beside it: NAME.csv the examples, NAME-histogram.csv,
        NAME-means.csv and NAME-effect.csv. Returns the paths written (PNG first);
        ``None`` when no page is shown."""
        tables = self.tables()
        if not tables:
            return None
        header, rows = tables.pop("examples")
        png, examples = export_view(self.scroll.widget(), header, rows, png_path)
        written = [png, examples]
        for name, (header, rows) in tables.items():
            path = png.with_name(f"{png.stem}-{name}.csv")
            with open(path, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(rows)
            written.append(path)
        return tuple(written)

    def default_export_name(self) -> str:
        page = self.page
        return f"{_layer(page.site)}-{page.unit_name}-{page.unit}.png" if page else "unit.png"

    @Slot()
    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the unit page (CSV files of its "
                                              "numbers are saved beside the PNG)",
                                              self.default_export_name(),
                                              "PNG + CSV (*.png)")
        if path:
            self.export(path)


def _group(page: UnitPage) -> str:
    """What the page's groups are, without the accuracy chart's words for its score: a
    sentence encoder's groups are "sentence (cosine to the intact embedding)" there, but
    the unit's means are not cosines."""
    return page.group_label.split(" (")[0].strip() or "group"


def _layer(site: str) -> str:
    """``block1.attn.heads`` reads as the layer the tree shows, ``block1.attn``."""
    return site.removesuffix(".heads")
