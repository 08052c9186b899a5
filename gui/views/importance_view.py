"""ImportanceChartView: what is lost when each unit (channel, neuron or head) is switched
off alone, in the units of the model's score (accuracy points, or cosine similarity for
an encoder). One bar per unit, labelled by unit, sortable by loss; hover names the exact
numbers, a click switches the unit off (or on again), a double-click opens its page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRect, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPixmap
from PySide6.QtWidgets import (QApplication, QCheckBox, QFileDialog, QHBoxLayout, QLabel,
                               QPushButton, QToolTip, QVBoxLayout, QWidget)

from gui.export import export_view
from gui.views.labels import ElidedLabel, TokenAxis

#: The change drawn in full colour; smaller ones fade to grey, so a head whose removal
#: costs 0.006 similarity (0.994 left) is not as red as one that breaks the task.
FULL_CHANGE = {"accuracy": 20.0, "cosine": 0.2}
GREY, RED, BLUE = np.array([138, 138, 138]), np.array([224, 68, 62]), np.array([76, 155, 232])
WORDS = {
    "accuracy": ("accuracy drop (points)",
                 "Accuracy lost when one {what} is switched off ({mode}), in points"),
    "cosine": ("similarity lost",
               ("Similarity to the intact model's embedding lost when one {what} is "
                "switched off ({mode}): 1 − cosine")),
}
#: The left axis of a short chart (a dock in a 640-pixel-high window): before a run
#: and after it alike.
SHORT_AXIS = {"accuracy": "points lost", "cosine": "similarity lost"}
OFF_PEN = pg.mkPen("#ff3b30", width=2)
HINT = "Hover a bar for its numbers · click: switch the unit off (again: on) · " \
       "double-click: its unit page"


def change_colours(drops: np.ndarray, metric: str) -> list:
    """One brush per bar: grey for no change, red for a loss, blue for a gain, the
    stronger the bigger the change."""
    full = FULL_CHANGE.get(metric, FULL_CHANGE["accuracy"])
    out = []
    for drop in drops:
        t = float(np.clip(abs(drop) / full, 0.0, 1.0)) ** 0.5
        target = RED if drop > 0 else BLUE
        out.append(pg.mkBrush(*(GREY + t * (target - GREY)).astype(int)))
    return out


class _Picture:
    """A finished picture where export_view expects a widget (it only grabs it)."""

    def __init__(self, pixmap: QPixmap) -> None:
        self.pixmap = pixmap

    def grab(self) -> QPixmap:
        return self.pixmap


@dataclass(frozen=True)
class Bar:
    """One unit's bar: where it lives, its short label, its score with it off."""

    site: str
    unit: int
    label: str
    score: float
    baseline: float


class ImportanceChartView(QWidget):
    """Owns a "Measure importance" button, the sort toggle and the bar chart.

    ``requested``: the button was pressed; ``unit_clicked(site, unit)``: a bar was
    clicked (switch it off or on); ``unit_page_requested(site, unit)``: double-clicked.
    """

    requested = Signal()
    unit_clicked = Signal(str, int)
    unit_page_requested = Signal(str, int)
    drawn = Signal()

    def __init__(self, parent: Optional[QWidget] = None,
                 button_text: str = "Measure head importance", what: str = "head",
                 exportable: bool = False, one_row: bool = False) -> None:
        super().__init__(parent)
        self.score_metric = "accuracy"
        self.what = what
        self.mode = "zero"
        self.entries: list[Bar] = []
        #: Bar i of the chart is ``entries[order[i]]``.
        self.order = np.zeros(0, int)
        self.drops = np.zeros(0)   # in chart order
        self.off: set[tuple[str, int]] = set()
        self.button = QPushButton(button_text)
        self.button.setToolTip(f"Switch each {what} off in turn (all in one batched pass) "
                               "and chart how much of the model's score is lost")
        self.sort_box = QCheckBox("sort by loss")
        self.sort_box.setToolTip("Biggest loss first (otherwise in unit order)")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the chart as PNG and its numbers as CSV")
        self.export_button.setVisible(exportable)
        self.export_button.setEnabled(False)
        # A wrapped label, not the plot's own title: that one is cut off when narrow.
        self.caption = QLabel(f"Press the button: each {what} is switched off in turn.")
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: #666; font-size: 11px;")
        self.axis = TokenAxis("bottom", 7)
        self.axis.set_tokens([])  # no numbers under an empty chart
        self.plot = pg.PlotWidget(axisItems={"bottom": self.axis})
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.one_row = one_row
        self.plot.setLabel("left", self.axis_words("accuracy"))
        # Plain numbers: "similarity lost (x0.001)" reads as a different unit.
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setMinimumHeight(60)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush="#8a8a8a")
        self.plot.addItem(self.bars)
        self.plot.addItem(pg.InfiniteLine(0, angle=0, pen=pg.mkPen("#666", width=1)))
        self.hover = ElidedLabel(HINT)
        self.hover.setStyleSheet("color: #666; font-size: 11px;")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self._caption_text = self.caption.text()
        if one_row:  # a wide, short dock: button, caption and toggles on one line; the
            # caption shows the hovered bar's numbers (no line of its own under the chart)
            self.caption = ElidedLabel(self.caption.text())
            self.caption.setStyleSheet("color: #666; font-size: 11px;")
            top.addWidget(self.button)
            top.addWidget(self.caption, 1)
            layout.addLayout(top)
        else:
            top.addWidget(self.button, 1)
            layout.addLayout(top)
            layout.addWidget(self.caption)
        top.addWidget(self.sort_box)
        top.addWidget(self.export_button)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.hover)
        # The hovered bar's numbers go in the caption (and the tooltip): a line of
        # their own under the chart was squeezed onto its labels in a small window.
        self.hover.setVisible(False)
        self._pending: Optional[int] = None
        self._click_timer = QTimer(self)
        self._click_timer.setSingleShot(True)
        self._click_timer.setInterval(QApplication.doubleClickInterval())
        self._click_timer.timeout.connect(self._on_click_timeout)
        self.button.clicked.connect(self.requested)
        self.sort_box.toggled.connect(self._redraw)
        self.export_button.clicked.connect(self._on_export_clicked)
        scene = self.plot.scene()
        scene.sigMouseClicked.connect(self._on_scene_clicked)
        scene.sigMouseMoved.connect(self._on_scene_moved)

    # --- drawing ------------------------------------------------------------------------
    def show_sweeps(self, baseline: float, sweeps: Sequence, metric: str,
                    labels: Optional[Sequence[str]] = None) -> None:
        """Chart each unit's loss: ``baseline`` minus its score, in points for accuracy.

        ``sweeps``: core.analysis.evaluate.Sweep, one per site; several of them are heads
        of successive layers ("L0H2"). ``labels``: one per unit of all sweeps, if given.
        """
        entries = []
        for layer, sweep in enumerate(sweeps):
            for unit, score in zip(sweep.units, sweep.score):
                entries.append(Bar(sweep.site, int(unit), f"L{layer}H{unit}", float(score),
                                   float(baseline)))
        if labels is not None:
            entries = [Bar(e.site, e.unit, str(text), e.score, e.baseline)
                       for e, text in zip(entries, labels)]
        self.mode = sweeps[0].mode if sweeps else "zero"
        self.show_bars(entries, metric)

    def show_bars(self, entries: Sequence[Bar], metric: str) -> None:
        self.score_metric = metric if metric in WORDS else "accuracy"
        self.entries = list(entries)
        caption = WORDS[self.score_metric][1]
        self.plot.setLabel("left", self.axis_words(self.score_metric))
        self.set_caption(caption.format(what=self.what, mode=self.mode))
        self.export_button.setEnabled(bool(self.entries))
        self._redraw()

    def axis_words(self, metric: str) -> str:
        """The left axis's label for ``metric``: the same before and after a run."""
        words = WORDS.get(metric, WORDS["accuracy"])[0]
        if self.one_row:  # a short chart: a label its height can hold
            return SHORT_AXIS.get(metric, words)
        return words

    @property
    def caption_text(self) -> str:
        """The caption (not the hovered bar's numbers it may show meanwhile)."""
        return self._caption_text

    def set_caption(self, text: str) -> None:
        self.caption.setText(text)
        self._caption_text = text

    @property
    def scale(self) -> float:
        return 100.0 if self.score_metric == "accuracy" else 1.0

    def losses(self) -> np.ndarray:
        """Each entry's loss in chart units (points or similarity), in unit order."""
        return np.array([self.scale * (e.baseline - e.score) for e in self.entries], float)

    @Slot()
    def _redraw(self) -> None:
        losses = self.losses()
        if self.sort_box.isChecked():
            # Biggest loss first; ties keep unit order (a stable sort).
            self.order = np.argsort(-losses, kind="stable")
        else:
            self.order = np.arange(len(losses))
        self.drops = losses[self.order] if len(losses) else np.zeros(0)
        x = np.arange(len(self.drops)) + 0.5  # bar i is centred in cell i, as its label
        width = 0.7 if len(self.drops) >= 8 else 0.45  # four heads are not four slabs
        # (pyqtgraph 0.14 fails on an empty list of pens: none then.)
        self.bars.setOpts(x=x, height=self.drops, width=width,
                          brushes=change_colours(self.drops, self.score_metric),
                          pen=None, pens=self._pens() or None)
        self.axis.set_tokens([self.entries[i].label for i in self.order])
        floor = 5.0 if self.score_metric == "accuracy" else 0.02
        lo = min(0.0, float(self.drops.min(initial=0)))
        self.plot.setYRange(lo, max(float(self.drops.max(initial=0)), floor), padding=0.05)
        self.plot.setXRange(0, max(len(self.drops), 1), padding=0.01)
        self.drawn.emit()

    def _pens(self) -> list:
        plain = pg.mkPen(None)
        return [OFF_PEN if (self.entries[i].site, self.entries[i].unit) in self.off
                else plain for i in self.order]

    def set_switched_off(self, off: set[tuple[str, int]]) -> None:
        """Frame the bars of units that are switched off now (red)."""
        self.off = set(off)
        if len(self.order):
            self.bars.setOpts(pen=None, pens=self._pens())

    def clear(self, text: str = "", metric: Optional[str] = None) -> None:
        """No bars; the axis names ``metric`` (the open model's score) where given."""
        self.entries = []
        self.off = set()
        if metric is not None:
            self.score_metric = metric if metric in WORDS else "accuracy"
        self.plot.setLabel("left", self.axis_words(self.score_metric))
        self.export_button.setEnabled(False)
        self._redraw()
        if text:
            self.set_caption(text)

    # --- interaction --------------------------------------------------------------------
    def bar_at(self, scene_pos: QPointF) -> Optional[int]:
        """The chart position of the bar under ``scene_pos``, or None."""
        box = self.plot.getPlotItem().getViewBox()
        if not len(self.drops) or not box.sceneBoundingRect().contains(scene_pos):
            return None
        point = box.mapSceneToView(scene_pos)
        i = int(np.floor(point.x()))
        return i if 0 <= i < len(self.drops) else None

    def bar_centre(self, i: int) -> QPointF:
        """Scene position of bar ``i``'s middle (for tests and tooltips)."""
        box = self.plot.getPlotItem().getViewBox()
        top = float(self.drops[i]) if len(self.drops) else 0.0
        lo, hi = box.viewRange()[1]
        y = top / 2 if abs(top) > 0.1 * (hi - lo) else (lo + hi) / 2
        return box.mapViewToScene(QPointF(i + 0.5, y))

    def entry_at_bar(self, i: int) -> Bar:
        return self.entries[int(self.order[i])]

    def describe(self, i: int) -> str:
        """The exact numbers of bar ``i``."""
        e = self.entry_at_bar(i)
        loss = float(self.drops[i])
        name = f"{e.site} {self.what} {e.unit}" if not e.label.startswith("L") \
            else f"{e.label} ({e.site})"
        state = " — switched off now" if (e.site, e.unit) in self.off else ""
        if self.score_metric == "accuracy":
            return (f"{name}: accuracy {100 * e.score:.2f} % with it off ({self.mode}), "
                    f"intact {100 * e.baseline:.2f} %: {loss:+.2f} points lost{state}")
        return (f"{name}: similarity {e.score:.4f} with it off ({self.mode}), "
                f"intact {e.baseline:.4f}: {loss:+.4f} lost{state}")

    def _on_scene_moved(self, pos) -> None:
        i = self.bar_at(pos)
        if i is None:
            self.hover.setText(HINT if self.entries else "")
            self.plot.setToolTip(HINT if self.entries else "")
            self.caption.setText(self._caption_text)
            return
        text = self.describe(i)
        self.hover.setText(text)
        self.caption.setText(text)
        self.plot.setToolTip(text)
        if self.plot.underMouse():
            view = self.plot
            QToolTip.showText(view.mapToGlobal(view.mapFromScene(pos)), text, view)

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().leaveEvent(event)
        self.caption.setText(self._caption_text)

    def _on_scene_clicked(self, event) -> None:
        if event.button() != pg.QtCore.Qt.MouseButton.LeftButton:
            return
        i = self.bar_at(event.scenePos())
        if i is None:
            return
        event.accept()
        if event.double():
            self._click_timer.stop()
            self._pending = None
            e = self.entry_at_bar(i)
            self.unit_page_requested.emit(e.site, e.unit)
        else:
            # Wait for a possible second click: a double-click opens the page and must
            # not switch the unit off on its way.
            self._pending = i
            self._click_timer.start()

    def _on_click_timeout(self) -> None:
        if self._pending is not None and self._pending < len(self.order):
            e = self.entry_at_bar(self._pending)
            self.unit_clicked.emit(e.site, e.unit)
        self._pending = None

    # --- export -------------------------------------------------------------------------
    def numbers(self) -> tuple[tuple[str, ...], list]:
        loss = "drop (points)" if self.score_metric == "accuracy" else "drop (similarity)"
        score = "score (accuracy)" if self.score_metric == "accuracy" else "score (cosine)"
        rows = [(e.site, e.unit, e.label, self.mode, f"{e.score:.6g}", f"{e.baseline:.6g}",
                 f"{float(self.drops[k]):.6g}")
                for k, e in ((k, self.entry_at_bar(k)) for k in range(len(self.order)))]
        return ("site", "unit", "label", "mode", score, "intact score", loss), rows

    def picture(self) -> QPixmap:
        """What Export… saves: the caption over the chart, without the buttons."""
        chart = self.plot.grab()
        ratio = chart.devicePixelRatio()
        width = round(chart.width() / ratio)
        text = self._caption_text + (" Sorted by loss." if self.sort_box.isChecked()
                                     else "")
        font = QFont(self.caption.font())
        metrics = QFontMetrics(font)
        pad = 6
        flags = int(Qt.AlignmentFlag.AlignLeft) | int(Qt.TextFlag.TextWordWrap)
        box = metrics.boundingRect(QRect(0, 0, width - 2 * pad, 10_000), flags, text)
        top = box.height() + 2 * pad
        out = QPixmap(round(width * ratio), round((top + chart.height() / ratio) * ratio))
        out.setDevicePixelRatio(ratio)
        out.fill(QColor("black"))
        painter = QPainter(out)
        painter.setFont(font)
        painter.setPen(QColor("#cccccc"))
        painter.drawText(QRect(pad, pad, width - 2 * pad, box.height()), flags, text)
        painter.drawPixmap(0, top, chart)
        painter.end()
        return out

    def export(self, png_path: str):
        header, rows = self.numbers()
        return export_view(_Picture(self.picture()), header, rows, png_path)

    @Slot()
    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the importance chart",
                                              "importance.png", "PNG + CSV (*.png)")
        if path:
            self.export(path)
