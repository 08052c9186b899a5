"""LayerMapView: a 2-D map (PCA) of one layer's activations over the evaluation set —
one point per example (per position for token models), coloured by class, misclassified
examples drawn as crosses. Hover shows the example, a click loads it as the input."""

from __future__ import annotations

import html
from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (QBoxLayout, QFileDialog, QHBoxLayout, QLabel,
                               QPushButton, QVBoxLayout, QWidget)

from core.unit_values import LayerMap
from gui.export import export_view
from gui.views.labels import ElidedLabel, side_panel

#: A categorical palette (Tableau 10 + 2), readable on black; grey for "no label".
PALETTE = ("#4e9be8", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#d4d4d4", "#8cd17d", "#a0cbe8")
NO_LABEL = "#5a5a5a"
NO_LABEL_FAINT = (90, 90, 90, 150)
OTHER = "#9a9a9a"
#: Position in the sequence, first to last, where there is no label to colour by.
POSITION_MAP = pg.colormap.get("viridis")
HINT = "Hover a point to see its example · click it to load that example as the input"
THUMB = 64
SIDE_WIDTH = 290
#: Narrower than this, the legend and preview go under the map (at most this high).
NARROW, SIDE_HEIGHT = 600, 150


def label_colours(labels: np.ndarray, n_names: int) -> tuple[dict[int, str], bool]:
    """label -> colour; at most ``len(PALETTE)`` colours: with more labels the most
    common ones keep theirs and the rest share one ("other"). -1 is grey."""
    labels = np.asarray(labels)
    present = [int(v) for v in np.unique(labels) if v >= 0]
    n = max(n_names, max(present, default=-1) + 1)
    if n <= len(PALETTE):
        return {v: PALETTE[v] for v in range(n)}, False
    counts = {v: int((labels == v).sum()) for v in present}
    top = sorted(present, key=lambda v: (-counts[v], v))[:len(PALETTE) - 1]
    return {v: PALETTE[k] for k, v in enumerate(sorted(top))}, True


def _thumbnail(picture: np.ndarray, size: int = THUMB) -> QPixmap:
    grey = (np.clip(np.asarray(picture, np.float32), 0, 1) * 255).astype(np.uint8)
    grey = np.ascontiguousarray(grey)
    h, w = grey.shape
    image = QImage(grey.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(image).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation)


def _mark_letter(text: str, position: int) -> str:
    """``text`` (a letter sequence after its start token) with the letter at token
    ``position`` bold and underlined; other text as it is."""
    if " " in text or not 1 <= position <= len(text):
        return html.escape(text)
    i = position - 1
    return (html.escape(text[:i]) + f"<b><u>{html.escape(text[i])}</u></b>" +
            html.escape(text[i + 1:]))


class LayerMapView(QWidget):
    """Owns the scatter plot, its legend and the hovered example's preview.

    ``sample_requested(index)``: a point was clicked; ``map_requested``: the "Map this
    layer" button."""

    sample_requested = Signal(int)
    map_requested = Signal()
    drawn = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.map: Optional[LayerMap] = None
        self.examples: Optional[np.ndarray] = None
        self.example_texts: tuple[str, ...] = ()
        self.class_names: tuple[str, ...] = ()
        self.colours: dict[int, str] = {}
        self.misclassified = np.zeros(0, bool)
        self.legend_entries: list[tuple[str, str]] = []
        self.scheme = "label"
        self.per_example = False
        self.title = ElidedLabel("Map of a layer: choose a layer, then Analyse › Map of "
                                 "this layer")
        self.title.setStyleSheet("font-weight: bold;")
        self.map_button = QPushButton("Map this layer")
        self.map_button.setToolTip("PCA of the selected layer's activations over the "
                                   "evaluation set, one point per example")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the map as PNG and its coordinates as CSV")
        self.export_button.setEnabled(False)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMinimumHeight(60)
        for side in ("left", "bottom"):
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.plot.getViewBox().setAspectLocked(False)
        self.scatter = pg.ScatterPlotItem(size=6, pxMode=True)
        self.current = pg.ScatterPlotItem(size=14, pxMode=True, brush=None,
                                          pen=pg.mkPen("w", width=2), symbol="o")
        self.current.setZValue(10)
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.current)
        self.legend = QLabel("")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setStyleSheet("font-size: 11px;")
        self.legend_title = QLabel("")
        self.legend_title.setWordWrap(True)
        self.legend_title.setStyleSheet("color: #666; font-size: 11px;")
        self.preview = QLabel()
        self.preview.setFixedSize(THUMB, THUMB)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #111; border: 1px solid #333;")
        self.preview_text = QLabel(HINT)
        self.preview_text.setWordWrap(True)
        self.preview_text.setStyleSheet("font-size: 11px;")
        self.preview_text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 4, 0)
        side_layout.setSpacing(3)
        side_layout.addWidget(self.legend_title)
        side_layout.addWidget(self.legend)
        hovered = QHBoxLayout()
        hovered.setContentsMargins(0, 4, 0, 0)
        hovered.addWidget(self.preview, 0, Qt.AlignmentFlag.AlignTop)
        hovered.addWidget(self.preview_text, 1)
        side_layout.addLayout(hovered)
        side_layout.addStretch(1)
        # Legend and preview scroll in a short dock (a 640-pixel-high window) rather
        # than making the window taller.
        scroll = side_panel(side, SIDE_WIDTH)
        self.plot.setMinimumWidth(120)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title, 1)
        head.addWidget(self.map_button)
        head.addWidget(self.export_button)
        # Legend and preview beside the map in a wide dock, under it in a narrow one.
        self.side = scroll
        self.body = body = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.plot, 1)
        body.addWidget(scroll)
        # Narrow until shown wide: a wide minimum would widen a side dock for good.
        self.narrow: Optional[bool] = None
        self._arrange(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addLayout(head)
        layout.addLayout(body, 1)
        self.scatter.sigClicked.connect(self._on_points_clicked)
        self.plot.scene().sigMouseMoved.connect(self._on_moved)
        self.map_button.clicked.connect(self.map_requested)
        self.export_button.clicked.connect(self._on_export_clicked)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._arrange(self.width() < NARROW)

    def _arrange(self, narrow: bool) -> None:
        if narrow == self.narrow:
            return
        self.narrow = narrow
        if narrow:
            self.body.setDirection(QBoxLayout.Direction.TopToBottom)
            self.side.setMinimumWidth(0)
            self.side.setMaximumWidth(16_777_215)
            self.side.setMaximumHeight(SIDE_HEIGHT)
        else:
            self.body.setDirection(QBoxLayout.Direction.LeftToRight)
            self.side.setFixedWidth(SIDE_WIDTH)
            self.side.setMaximumHeight(16_777_215)

    # --- what the window knows about the examples ---------------------------------------
    def set_examples(self, examples: Optional[np.ndarray], class_names: Sequence[str] = (),
                     example_texts: Sequence[str] = ()) -> None:
        """The thumbnails (first N examples) and names the hover preview can show."""
        self.examples = examples
        self.class_names = tuple(class_names)
        self.example_texts = tuple(example_texts)

    # --- drawing ------------------------------------------------------------------------
    def show_running(self, site: str) -> None:
        self.title.setText(f"Mapping {site}: projecting its activations over the "
                           "evaluation set…")

    def show_failed(self, text: str) -> None:
        self.clear(text)

    def clear(self, text: str = "") -> None:
        self.map = None
        self.scheme, self.per_example = "label", False
        self.scatter.setData([])
        self.current.setData([])
        for side in ("left", "bottom"):  # no "PC1 (21 % of variance)" over nothing
            axis = self.plot.getPlotItem().getAxis(side)
            axis.setLabel("")
            axis.showLabel(False)
        self.plot.getViewBox().setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self._fill_legend({}, (), False)
        self.export_button.setEnabled(False)
        self.preview.clear()
        self.preview_text.setText(HINT)
        self.title.setText(text or "Map of a layer: choose a layer, then Analyse › Map of "
                                   "this layer")

    def _mismatch(self, m: LayerMap) -> np.ndarray:
        """Points whose prediction is not their label — only where the labels are the
        classes the model predicts (images), not groups of positions."""
        same_names = tuple(m.label_names) == self.class_names or m.positions is None
        if not same_names:
            return np.zeros(len(m.labels), bool)
        return (m.predicted >= 0) & (m.labels >= 0) & (m.predicted != m.labels)

    def _scheme(self, m: LayerMap) -> str:
        """How points are coloured: "label" (a colour per class or group); "position"
        for token models whose groups are only the sequence each point is in
        (``self.per_example``) or more than there are colours; "one" for images of more
        classes than colours. A colour each for a dozen of them and "other" for the
        rest told nothing."""
        labels, indices = np.asarray(m.labels), np.asarray(m.indices)
        known = labels >= 0
        n = len(np.unique(labels[known]))
        self.per_example = m.positions is not None and n > 1 and \
            np.array_equal(labels[known], indices[known])
        if n > len(PALETTE) or self.per_example:
            return "position" if m.positions is not None else "one"
        return "label"

    def _positions(self, m: LayerMap) -> np.ndarray:
        """Each point's position in its sequence."""
        pos = np.asarray(m.positions)
        return pos[:, -1] if pos.ndim == 2 else pos.reshape(-1)

    def _brushes(self, m: LayerMap, order: np.ndarray) -> list:
        labels = np.asarray(m.labels)
        if self.scheme == "position":
            pos = self._positions(m).astype(float)
            top = max(float(pos.max(initial=0)), 1.0)
            colours = POSITION_MAP.map(pos / top, mode="qcolor")
            return [pg.mkBrush(colours[r]) for r in order]
        if self.scheme == "one":
            return [pg.mkBrush(PALETTE[0]) for _ in order]
        return [pg.mkBrush(NO_LABEL_FAINT) if labels[r] < 0
                else pg.mkBrush(self._colour(int(labels[r]))) for r in order]

    def show_map(self, m: LayerMap) -> None:
        self.map = m
        coords = np.asarray(m.coords, np.float32)
        self.scheme = self._scheme(m)
        self.colours, other = label_colours(m.labels, len(m.label_names))
        self.misclassified = self._mismatch(m)
        labels = np.asarray(m.labels)
        if self.scheme == "position":  # every point counts: none is "unlabelled"
            labels = np.zeros(len(labels), int)
        # Drawn bottom to top: unlabelled (small, faint), labelled, misclassified; each
        # point's data is its row, so hover and click find the right example.
        layer = np.where(labels < 0, 0, np.where(self.misclassified, 2, 1))
        order = np.argsort(layer, kind="stable")
        brushes = self._brushes(m, order)
        symbols = np.where(self.misclassified[order], "x", "o").tolist()
        sizes = np.where(self.misclassified[order], 11, np.where(labels[order] < 0, 4, 6))
        self.scatter.setData(x=coords[order, 0], y=coords[order, 1], brush=brushes,
                             symbol=symbols, size=sizes, pen=None, data=order)
        self.current.setData([])
        explained = list(np.asarray(m.explained, float)) + [0.0, 0.0]
        self.plot.setLabel("bottom", f"PC1 ({100 * explained[0]:.0f} % of variance)")
        self.plot.setLabel("left", f"PC2 ({100 * explained[1]:.0f} % of variance)")
        self.plot.getViewBox().autoRange(padding=0.04)
        points = "positions" if m.positions is not None else "examples"
        wrong = int(self.misclassified.sum())
        crosses = f" · ✕ {wrong} misclassified" if wrong else ""
        coloured = {"position": "coloured by position in the sequence",
                    "one": f"one colour ({len(np.unique(labels[labels >= 0]))} classes)",
                    "label": f"coloured by {'class' if m.positions is None else 'group'}"}
        # The activations (and the answers that make a ✕) are the intact model's,
        # whatever the ablation panel has switched off.
        self.title.setText(f"Map of {m.site} ({m.method}, intact model): {len(coords)} "
                           f"{points}, {coloured[self.scheme]}{crosses}")
        if self.scheme == "label":
            self._fill_legend(self.colours, m.label_names, other,
                              has_none=bool((np.asarray(m.labels) < 0).any()))
        else:
            self._fill_scale_legend(m)
        self.export_button.setEnabled(True)
        self.drawn.emit()

    def _colour(self, label: int) -> str:
        if label < 0:
            return NO_LABEL
        return self.colours.get(label, OTHER)

    def _fill_legend(self, colours: dict[int, str], names: Sequence[str], other: bool,
                     has_none: bool = False) -> None:
        """The legend: one swatch per label name, in columns (an HTML table)."""
        entries = [(colour, names[v] if v < len(names) else str(v))
                   for v, colour in sorted(colours.items()) if v < max(len(names), 1)]
        if other:
            entries.append((OTHER, "other"))
        if has_none:
            entries.append((NO_LABEL, "none"))
        if self.misclassified.any():
            entries.append(("", "✕ misclassified"))
        self.legend_entries = entries
        cols = 3 if len(entries) > 8 else 2
        rows = (len(entries) + cols - 1) // cols
        cells = []
        for r in range(rows):
            line = []
            for c in range(cols):
                k = c * rows + r
                if k < len(entries):
                    colour, name = entries[k]
                    swatch = f"<span style='color:{colour}'>●</span>&nbsp;" if colour else ""
                    line.append(f"<td style='padding-right:8px'>{swatch}{html.escape(name)}</td>")
            cells.append("<tr>" + "".join(line) + "</tr>")
        self.legend.setText("<table cellspacing='0'>" + "".join(cells) + "</table>"
                            if entries else "")
        self.legend_title.setText("" if not entries else
                                  "colour: class" if self.map is None or
                                  self.map.positions is None else "colour: group")

    def _fill_scale_legend(self, m: LayerMap) -> None:
        """The legend of a map not coloured by label: a few swatches of the position
        scale, or the one colour."""
        if self.scheme == "position":
            pos = self._positions(m)
            top = int(pos.max(initial=0))
            marks = sorted({0, top // 2, top})
            colours = POSITION_MAP.map(np.asarray(marks, float) / max(top, 1), mode="qcolor")
            entries = [(QColor(c).name(), f"position {p}" + (" (first)" if p == 0 else
                                                             " (last)" if p == top else ""))
                       for p, c in zip(marks, colours)]
            why = "each group is one example" if self.per_example else \
                "too many groups to colour"
            title = f"colour: position in the sequence ({why})"
        else:
            entries = [(PALETTE[0], "every example")]
            title = "one colour: too many classes to tell apart (hover for each)"
        if self.misclassified.any():
            entries.append(("", "✕ misclassified"))
        self.legend_entries = entries
        rows = []
        for colour, name in entries:
            swatch = f"<span style='color:{colour}'>●</span>&nbsp;" if colour else ""
            rows.append(f"<tr><td>{swatch}{html.escape(name)}</td></tr>")
        self.legend.setText("<table cellspacing='0'>" + "".join(rows) + "</table>")
        self.legend_title.setText(title)

    @Slot(int)
    def show_current(self, index: int) -> None:
        """Ring the point(s) of the example that is the input now."""
        if self.map is None:
            return
        rows = np.flatnonzero(np.asarray(self.map.indices) == index)
        coords = np.asarray(self.map.coords)[rows]
        self.current.setData(x=coords[:, 0], y=coords[:, 1])
        if len(rows):  # until a point is hovered the preview shows the input
            self.show_hovered(int(rows[0]), now=True)

    # --- interaction --------------------------------------------------------------------
    def point_scene_pos(self, row: int) -> QPointF:
        """Scene position of point ``row`` (for tests)."""
        x, y = (float(v) for v in np.asarray(self.map.coords)[row])
        return self.plot.getViewBox().mapViewToScene(QPointF(x, y))

    def row_at(self, scene_pos: QPointF) -> Optional[int]:
        if self.map is None:
            return None
        box = self.plot.getViewBox()
        if not box.sceneBoundingRect().contains(scene_pos):
            return None
        points = self.scatter.pointsAt(self.scatter.mapFromScene(scene_pos))
        if len(points) == 0:
            return None
        return int(points[0].data())

    def describe(self, row: int) -> str:
        m = self.map
        index, label, pred = int(m.indices[row]), int(m.labels[row]), int(m.predicted[row])
        names = m.label_names
        label_text = names[label] if 0 <= label < len(names) else "none"
        pred_text = self.class_names[pred] if 0 <= pred < len(self.class_names) else (
            str(pred) if pred >= 0 else "–")
        if m.positions is not None:
            pos = int(m.positions[row][1]) if np.ndim(m.positions) == 2 else int(m.positions[row])
            text = self.example_texts[index] if index < len(self.example_texts) else ""
            shown = f"<br><tt>{_mark_letter(text, pos)}</tt>" if text else ""
            # No group where the groups are the sequences themselves, no prediction
            # where the model makes none (a sentence encoder).
            group = "" if self.per_example else f"<br>group: {label_text}"
            guess = f"<br>predicted next: {pred_text}" if pred >= 0 else ""
            return f"<b>sequence {index}, position {pos}</b>{shown}{group}{guess}"
        wrong = " <span style='color:#ff6b63'>(wrong)</span>" if self.misclassified[row] \
            else ""
        return (f"<b>example {index}</b><br>label: {label_text}<br>predicted: "
                f"{pred_text}{wrong}<br><span style='color:#777'>PC1 "
                f"{float(m.coords[row][0]):.2f}, PC2 {float(m.coords[row][1]):.2f}</span>")

    def show_hovered(self, row: int, now: bool = False) -> None:
        m = self.map
        index = int(m.indices[row])
        # Sequences have no picture: their text is in the read-out.
        self.preview.setVisible(m.positions is None)
        if self.examples is not None and index < len(self.examples):
            self.preview.setPixmap(_thumbnail(self.examples[index]))
        else:
            self.preview.clear()
            self.preview.setText("no\npreview")
        tail = "the input now (ringed)" if now else "click to load it"
        self.preview_text.setText(self.describe(row) + "<br><span style='color:#777'>"
                                  f"{tail}</span>")

    def _on_moved(self, pos) -> None:
        row = self.row_at(pos)
        if row is not None:
            self.show_hovered(row)

    def _on_points_clicked(self, _item, points, _event=None) -> None:
        if len(points) and self.map is not None:
            row = int(points[0].data())
            self.show_hovered(row)
            self.sample_requested.emit(int(self.map.indices[row]))

    # --- export -------------------------------------------------------------------------
    def numbers(self) -> tuple[tuple[str, ...], list]:
        m = self.map
        if m is None:
            return ("example", "pc1", "pc2", "label", "predicted"), []
        names = m.label_names
        rows = []
        for row in range(len(m.coords)):
            label = int(m.labels[row])
            pos = "" if m.positions is None else int(np.ravel(m.positions[row])[-1])
            rows.append((m.site, int(m.indices[row]), pos, f"{float(m.coords[row][0]):.6g}",
                         f"{float(m.coords[row][1]):.6g}", label,
                         names[label] if 0 <= label < len(names) else "",
                         int(m.predicted[row]), int(bool(self.misclassified[row]))))
        return ("layer", "example", "position", "pc1", "pc2", "label", "label_name",
                "predicted", "misclassified"), rows

    def export(self, png_path: str):
        header, rows = self.numbers()
        return export_view(self, header, rows, png_path)

    @Slot()
    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the layer map", "map.png",
                                              "PNG + CSV (*.png)")
        if path:
            self.export(path)
