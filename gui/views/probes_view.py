"""ProbesView: "where does the information appear?" — for each question (the digit, the
next letter, "is this position in the repeated half"), how well a linear probe reads
the answer off each layer, on examples it was not trained on, beside the same probe
trained on shuffled labels (the honesty check) and chance."""

from __future__ import annotations

import math
import re
from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from core.unit_values import ProbeReport
from gui.export import export_view
from gui.views.labels import ElidedLabel, side_panel

EXPLANATION = (
    "<b>Where does the information appear?</b> For every layer a linear probe (logistic "
    "regression) learns to read the answer off that layer's activations, and is scored "
    "on examples it never saw (<span style='color:#4c9be8'>held-out</span>). "
    "<span style='color:#f0a030'>Control</span>: the same probe trained on shuffled "
    "labels — a wide layer can memorise anything, so a probe means something only where "
    "it beats the control and the dashed chance line by "
    "far. <span style='color:#777'>Train</span> accuracy is the faint line. Chance: "
    "always answering the class most common in training (ten digits: about 10 %, less "
    "where the held-out rows hold fewer of it).")
HELD_OUT, CONTROL, TRAIN, CHANCE = "#4c9be8", "#f0a030", "#777777", "#bbbbbb"
#: Longest layer name drawn whole under the chart (the hover read-out has all of it).
NAME_CHARS = 20
SIDE_WIDTH = 270
PLACEHOLDER = ("No probes yet: press “Train probes”. Each layer gets a point per question: "
               "how well its activations tell the answer.")
RUN_TIP = ("Fit a logistic-regression probe on every layer (fixed seed, held-out split "
           "of the evaluation data)")


def short_name(name: str, chars: int = NAME_CHARS) -> str:
    """A layer name that fits under the chart: whole where it is short enough, else its
    first and last parts around "…" ("encoder.….self"), else cut in the middle."""
    if len(name) <= chars:
        return name
    parts = name.split(".")
    if len(parts) > 2:
        head, tail = parts[0], parts[-1]
        middle = parts[1:-1]
        while middle and len(".".join([head, *middle, "…", tail])) > chars:
            middle.pop()
        shown = ".".join([head, *middle, "…", tail])
        if len(shown) <= chars:
            return shown
    half = (chars - 1) // 2
    return name[:half] + "…" + name[len(name) - (chars - 1 - half):]


def abbreviate(name: str) -> str:
    """``block0.attn.pattern`` -> ``b0.attn.pattern``: in a dotted name, every part but
    the last that is a word and a number keeps its first letter and the number."""
    parts = name.split(".")
    if len(parts) < 2:
        return name
    short = [re.sub(r"^([A-Za-z])[A-Za-z_]*?(\d+)$", r"\1\2", part) for part in parts[:-1]]
    return ".".join([*short, parts[-1]])


class NameAxis(pg.AxisItem):
    """A bottom axis of layer names at cell centres (name i spans i…i+1): level where
    every name fits its cell, else slanted, else slanted with long dotted names
    shortened (``b0.attn.pattern``: hover names the layer in full), and thinned to
    every k-th only where even those would touch or take too much of the chart."""

    ANGLE = 35.0
    #: The most of the chart's height slanted names may take.
    SLANT_SHARE = 0.42

    def __init__(self, point_size: int = 8) -> None:
        super().__init__("bottom")
        font = QFont()
        font.setPointSize(point_size)
        self.setTickFont(font)
        self.setStyle(tickLength=-3)
        self.full: list[str] = []
        self.names: list[str] = []
        self.slanted = False
        self.shortened = False

    def _metrics(self) -> QFontMetrics:
        return QFontMetrics(self.style["tickFont"])

    def set_names(self, names: Sequence[str]) -> None:
        self.full = [str(n) for n in names]
        self._use(False)
        self._fit()

    def _use(self, shortened: bool) -> None:
        names = [short_name(abbreviate(n) if shortened else n) for n in self.full]
        if names != self.names:
            self.names = names
            self.setTicks([[(i + 0.5, n) for i, n in enumerate(self.names)]])
            self.update()
        self.shortened = shortened and names != [short_name(n) for n in self.full]

    def _per_cell(self) -> float:
        lo, hi = self.range
        return self.width() / max(abs(hi - lo), 1e-9)

    def _slanted_height(self, names: Sequence[str]) -> int:
        metrics = self._metrics()
        widest = max((metrics.horizontalAdvance(n) for n in names), default=0)
        a = math.radians(self.ANGLE)
        return int(widest * math.sin(a) + metrics.height() * math.cos(a)) + 8

    def _fit(self) -> None:
        """Level, slanted or slanted and shortened — the first that shows every name —
        and the height that takes."""
        metrics = self._metrics()
        plot = self.parentItem()
        room = (plot.height() if plot is not None else 0) * self.SLANT_SHARE
        per_cell = self._per_cell()
        spacing = metrics.height() / math.sin(math.radians(self.ANGLE)) + 1
        choice = None
        for shortened in (False, True):
            names = [short_name(abbreviate(n) if shortened else n) for n in self.full]
            widest = max((metrics.horizontalAdvance(n) for n in names), default=0)
            if widest + 8 <= per_cell:
                choice = (shortened, False)
            elif self._slanted_height(names) <= room and spacing <= per_cell:
                choice = (shortened, True)
            if choice is not None:
                break
        if choice is None:  # thinned: shortened, slanted if that height fits
            names = [short_name(abbreviate(n)) for n in self.full]
            choice = (True, self._slanted_height(names) <= room)
        shortened, slanted = choice
        self._use(shortened)
        self.slanted = slanted
        height = self._slanted_height(self.names) if slanted else metrics.height() + 6
        if self.fixedHeight != height:
            self.setHeight(height)

    def setRange(self, mn, mx):  # noqa: N802 (pyqtgraph override)
        super().setRange(mn, mx)
        if getattr(self, "names", None):  # (called by the base class's __init__ too)
            self._fit()

    def resizeEvent(self, event=None) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if getattr(self, "names", None):
            self._fit()

    def step(self) -> int:
        if not self.names:
            return 1
        metrics = self._metrics()
        if self.slanted:
            needed = metrics.height() / math.sin(math.radians(self.ANGLE)) + 1
        else:
            needed = max(metrics.horizontalAdvance(n) for n in self.names) + 8
        return max(1, math.ceil(needed / max(self._per_cell(), 1e-9)))

    def shown(self) -> list[int]:
        """Which names are drawn."""
        k = self.step()
        return [i for i in range(len(self.names)) if i % k == 0]

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):  # noqa: N802 (pyqtgraph)
        super().drawPicture(p, axisSpec, tickSpecs, [])
        view = self.linkedView()
        if view is None or not self.names:
            return
        p.setClipping(False)  # a slanted name reaches left of its tick
        p.setFont(self.style["tickFont"])
        p.setPen(self.textPen())
        metrics = self._metrics()
        top = self.boundingRect().top() + 3
        for i in self.shown():
            x = self.mapFromScene(view.mapViewToScene(QPointF(i + 0.5, 0))).x()
            width = metrics.horizontalAdvance(self.names[i]) + 2
            if not self.slanted:
                p.drawText(QRectF(x - width / 2, top, width, metrics.height()),
                           int(Qt.AlignmentFlag.AlignCenter), self.names[i])
                continue
            p.save()
            p.translate(x, top + metrics.ascent() * 0.5)
            p.rotate(-self.ANGLE)
            p.drawText(QRectF(-width, -metrics.height() / 2, width, metrics.height()),
                       int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                       self.names[i])
            p.restore()


class ProbeChart(QWidget):
    """One question's chart: held-out, control and train accuracy per layer, chance."""

    def __init__(self, report: ProbeReport, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.report = report
        self.title = ElidedLabel(self._title())
        self.title.setStyleSheet("font-weight: bold;")
        self.axis = NameAxis(8)
        self.plot = pg.PlotWidget(axisItems={"bottom": self.axis})
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setMinimumHeight(60)
        n = len(report.sites)
        x = np.arange(n) + 0.5  # layer i centred in cell i, where its name is
        self.x = x
        self.train = self.plot.plot(x, report.train, pen=pg.mkPen(TRAIN, width=1),
                                    symbol="o", symbolSize=4, symbolBrush=TRAIN,
                                    symbolPen=None, name="train")
        self.control = self.plot.plot(x, report.shuffled, pen=pg.mkPen(CONTROL, width=2),
                                      symbol="s", symbolSize=6, symbolBrush=CONTROL,
                                      symbolPen=None, name="control (shuffled labels)")
        self.held_out = self.plot.plot(x, report.held_out, pen=pg.mkPen(HELD_OUT, width=3),
                                       symbol="o", symbolSize=8, symbolBrush=HELD_OUT,
                                       symbolPen=None, name="held-out")
        self.chance = pg.InfiniteLine(report.chance, angle=0,
                                      pen=pg.mkPen(CHANCE, width=1,
                                                   style=Qt.PenStyle.DashLine),
                                      label=f"chance {100 * report.chance:.0f} % "
                                            "(always the most common class)",
                                      labelOpts={"position": 0.02, "color": CHANCE,
                                                 "anchors": [(0, 1), (0, 1)]})
        self.plot.addItem(self.chance)
        self.axis.set_names(report.sites)
        self.plot.setXRange(-0.2, max(n, 1), padding=0.01)
        self.plot.setYRange(0, 1.0, padding=0.03)
        self.plot.getAxis("left").setTicks([[(v, f"{v:.0%}") for v in (0, 0.25, 0.5, 0.75, 1)]])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)
        self.plot.scene().sigMouseMoved.connect(self._on_moved)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self.axis._fit()  # slanted names or level ones depend on the chart's height

    def _title(self) -> str:
        """What matters first (the question, the best layer), the counts last: a narrow
        chart elides the end (the whole title is the tooltip then)."""
        r = self.report
        best = int(np.argmax(r.held_out)) if len(r.held_out) else 0
        where = f": best {r.sites[best]} {100 * r.held_out[best]:.0f} %" if r.sites else ""
        return (f"Probes for “{r.task}”{where} · {len(r.classes) or '?'} answers · "
                f"{r.n_train} train, {r.n_test} held-out rows")

    def layer_at(self, scene_pos) -> Optional[int]:
        """The layer under ``scene_pos``: over the chart or over its name."""
        item = self.plot.getPlotItem()
        box = item.getViewBox()
        over = box.sceneBoundingRect().united(self.axis.sceneBoundingRect())
        if not over.contains(scene_pos):
            return None
        axis = self.axis.sceneBoundingRect()
        if self.axis.slanted and axis.contains(scene_pos):
            # A slanted name runs down-left from its tick: follow it back up.
            depth = scene_pos.y() - axis.top()
            scene_pos = QPointF(scene_pos.x() + depth / math.tan(math.radians(
                self.axis.ANGLE)), axis.top())
        i = int(np.floor(box.mapSceneToView(scene_pos).x()))
        return i if 0 <= i < len(self.report.sites) else None

    def describe(self, i: int) -> str:
        r = self.report
        return (f"{r.sites[i]} ({int(r.dims[i])} features): held-out "
                f"{100 * r.held_out[i]:.1f} % · control {100 * r.shuffled[i]:.1f} % · "
                f"train {100 * r.train[i]:.1f} % · chance {100 * r.chance:.1f} %")

    def _on_moved(self, pos) -> None:
        """The title names the hovered layer's numbers (and its own again off them)."""
        i = self.layer_at(pos)
        text = self.describe(i) if i is not None else self._title()
        self.title.setText(text)
        self.plot.setToolTip(text if i is not None else "")


class ProbesView(QWidget):
    """Owns the explanation, the Run/Cancel buttons, a progress bar and one chart per
    question. ``run_requested``/``cancel_requested`` go to the controller."""

    run_requested = Signal()
    cancel_requested = Signal()
    drawn = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.reports: tuple[ProbeReport, ...] = ()
        self.charts: list[ProbeChart] = []
        self.explanation = QLabel(EXPLANATION)
        self.explanation.setWordWrap(True)
        self.explanation.setTextFormat(Qt.TextFormat.RichText)
        self.explanation.setStyleSheet("font-size: 11px;")
        self.run_button = QPushButton("Train probes")
        self.run_button.setToolTip(RUN_TIP)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the charts as PNG and the numbers as CSV")
        self.export_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel("Press “Train probes”: a probe is trained on every layer.")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("font-size: 11px;")
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.export_button)
        self.placeholder = QLabel(PLACEHOLDER)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #666;")
        self.placeholder.setMinimumHeight(20)
        charts = QWidget()
        self.charts_row = QHBoxLayout(charts)
        self.charts_row.setContentsMargins(0, 0, 0, 0)
        self.charts_row.addWidget(self.placeholder)
        # The words and buttons sit beside the charts and scroll: a short dock (a
        # 640-pixel-high window) keeps its charts tall enough to read.
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 4, 0)
        side_layout.setSpacing(3)
        side_layout.addWidget(self.explanation)
        side_layout.addLayout(buttons)
        side_layout.addWidget(self.progress)
        side_layout.addWidget(self.status)
        side_layout.addStretch(1)
        scroll = side_panel(side, SIDE_WIDTH)
        self.side = scroll
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(6)
        layout.addWidget(scroll)
        layout.addWidget(charts, 1)
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.export_button.clicked.connect(self._on_export_clicked)

    # --- states -------------------------------------------------------------------------
    def show_running(self, model: str = "") -> None:
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText(f"Training probes on every layer of {model}…" if model
                            else "Training probes on every layer…")

    @Slot(float, str)
    def show_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(round(100 * max(0.0, min(1.0, fraction))))
        if text:
            self.status.setText(text)

    def _idle(self, text: str) -> None:
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.hide()
        self.status.setText(text)
        self.status.setToolTip("")

    def show_cancelled(self) -> None:
        if self.reports:  # a re-run was cancelled: the charts are the previous run's
            self._idle("Cancelled — showing the previous probes. Press “Train probes” "
                       "to train them again.")
        else:
            self._idle("Cancelled: no probes trained. Press “Train probes” to start "
                       "again.")

    def show_failed(self, text: str) -> None:
        self._clear_charts()
        self._idle(text)

    def show_refused(self, text: str) -> None:
        """The model cannot have probes (``text`` says why): the button stays off until
        another model opens, so pressing it cannot seem to do nothing."""
        self.show_failed(text)
        self.placeholder.setText(f"No probes for this model. {text}")
        self.run_button.setEnabled(False)
        self.run_button.setToolTip(f"No probes for this model. {text}")

    def clear(self, text: str = "") -> None:
        self._clear_charts()
        self._idle(text or "Press “Train probes”: a probe is trained on every layer.")
        self.run_button.setToolTip(RUN_TIP)
        self.placeholder.setText(PLACEHOLDER)

    def _clear_charts(self) -> None:
        self.reports = ()
        for chart in self.charts:
            self.charts_row.removeWidget(chart)
            chart.deleteLater()
        self.charts = []
        self.placeholder.show()
        self.export_button.setEnabled(False)

    def show_reports(self, reports: Sequence[ProbeReport], model: str = "") -> None:
        """One chart per question, side by side."""
        self._clear_charts()
        self.reports = tuple(reports)
        self.placeholder.setVisible(not self.reports)
        for report in self.reports:
            chart = ProbeChart(report)
            self.charts.append(chart)
            self.charts_row.addWidget(chart, 1)
        notes = [note for r in self.reports for note in r.notes]
        what = f" of {model}" if model else ""
        self._idle(f"Probes on every layer{what}: {len(self.reports)} question"
                   f"{'s' if len(self.reports) != 1 else ''}" +
                   (f" · {len(notes)} note{'s' if len(notes) != 1 else ''} (hover)"
                    if notes else "") + ".")
        self.status.setToolTip("\n".join(notes))
        self.export_button.setEnabled(bool(self.reports))
        self.drawn.emit()

    # --- export -------------------------------------------------------------------------
    def numbers(self) -> tuple[tuple[str, ...], list]:
        rows = [(r.task, i, site, int(r.dims[i]), f"{r.held_out[i]:.6g}",
                 f"{r.shuffled[i]:.6g}", f"{r.train[i]:.6g}", f"{r.chance:.6g}",
                 r.n_train, r.n_test)
                for r in self.reports for i, site in enumerate(r.sites)]
        return ("task", "order", "layer", "features", "held_out_accuracy",
                "shuffled_label_control", "train_accuracy", "chance", "n_train",
                "n_test"), rows

    def export(self, png_path: str):
        header, rows = self.numbers()
        return export_view(self, header, rows, png_path)

    @Slot()
    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the probes", "probes.png",
                                              "PNG + CSV (*.png)")
        if path:
            self.export(path)
