"""AttentionView: every head's attention pattern for one layer, an enlarged head with
token labels, per-head scores for all layers, and the head-importance chart."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (QAbstractItemView, QLabel, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from core.analysis.attention import HeadScores
from gui.views.channel_grid import OFF_PEN, PLAIN_PEN, SELECTED_PEN, TOGGLE_MODIFIERS
from gui.views.imaging import ValueImageItem
from gui.views.importance_view import ImportanceChartView
from gui.views.labels import Caption, ElidedLabel, TokenAxis, tile_plot, titled
from gui.views.unit_menu import UnitPageRequests

CMAP = "inferno"
SCORE_COLUMNS = ("head", "prev. token", "induction", "first token", "acc. if off")
IF_OFF = {"accuracy": "acc. if off", "cosine": "sim. if off"}
EMPTY_CHART = "Press the button: each head is switched off in turn."
HINT = ("Click a head to enlarge it · Ctrl+click (or Shift+click) to switch a head off · "
        "double-click: what does it do?")


def layer_of(site: str) -> str:
    """``block1.attn.pattern`` -> ``block1.attn`` (what the tree calls the layer)."""
    return site.rpartition(".")[0]


class AttentionView(QWidget):
    """Owns the head grid, the enlarged head, the score table and the importance chart."""

    head_toggled = Signal(str, int)        # heads site, head
    layer_requested = Signal(str)          # attention layer name, from the score table
    importance_requested = Signal()
    #: Double-click or the context menu on a head: its page (heads site, head).
    unit_page_requested = Signal(str, int)
    drawn = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.site = ""            # pattern site shown
        self.heads_site = ""
        self.patterns = np.zeros((0, 1, 1), np.float32)
        self.tokens: list[str] = []
        self.ablated: frozenset[int] = frozenset()
        self.selected = 0
        self.scores: Optional[HeadScores] = None
        self.importance: dict[str, np.ndarray] = {}
        self.tiles: list[ValueImageItem] = []
        self._frames: list = []
        self._titles: list[pg.TextItem] = []
        self._boxes: list[pg.ViewBox] = []
        self._cols = 1
        self._lut = pg.colormap.get(CMAP).getLookupTable(nPts=256)
        self._build()

    def _build(self) -> None:
        self.title = ElidedLabel("")
        self.title.setStyleSheet("font-weight: bold;")
        self.grid = pg.GraphicsLayoutWidget()
        # Its title is a label above it: a plot's own title keeps the plot at least as
        # wide as the text and the image slides out of view when the plot is narrow.
        self.detail_title = ElidedLabel("")
        self.detail_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = pg.PlotWidget(axisItems={"left": TokenAxis("left", 8),
                                               "bottom": TokenAxis("bottom", 8)})
        self.detail.invertY(True)
        self.detail.setAspectLocked(True)
        self.detail.setMenuEnabled(False)
        self.detail.setLabel("left", "query (attending from)")
        self.detail.setLabel("bottom", "key (attending to)")
        self.detail_image = ValueImageItem(0, lambda *_: None, self._on_detail_hover)
        self.detail.addItem(self.detail_image)
        bar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get(CMAP), interactive=False,
                              width=12, label="attention weight")
        bar.setImageItem(self.detail_image, insert_in=self.detail.getPlotItem())
        self.table = QTableWidget(0, len(SCORE_COLUMNS))
        self.table.setHorizontalHeaderLabels(SCORE_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.chart = ImportanceChartView()
        self.importance_button = self.chart.button
        self.importance_plot = self.chart.plot
        self.importance_bars = self.chart.bars
        self.score_metric = "accuracy"
        scores = QWidget()
        scores_layout = QVBoxLayout(scores)
        scores_layout.setContentsMargins(0, 0, 0, 0)
        intro = QLabel("Every head, scored over the evaluation set (click a row to jump):")
        intro.setWordWrap(True)
        scores_layout.addWidget(intro)
        scores_layout.addWidget(self.table, 1)
        chart = self.chart
        side = QSplitter()
        side.addWidget(scores)
        side.addWidget(chart)
        side.setSizes([380, 460])
        top = QSplitter()
        top.addWidget(self.grid)
        top.addWidget(titled(self.detail_title, self.detail))
        top.setSizes([420, 420])
        body = QSplitter(Qt.Orientation.Vertical)
        body.addWidget(top)
        body.addWidget(side)
        body.setSizes([430, 300])
        self.hover = ElidedLabel(HINT)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(body, 1)
        layout.addWidget(self.hover)
        self.table.cellClicked.connect(self._on_table_clicked)
        self.chart.requested.connect(self.importance_requested)
        self.page_requests = UnitPageRequests(
            self.grid.scene(), self._head_at,
            lambda head: self.unit_page_requested.emit(self.heads_site, head), self)

    def _head_at(self, scene_pos) -> Optional[int]:
        """The head whose pattern is drawn at ``scene_pos``, or ``None``."""
        return next((h for h, plot in enumerate(self._boxes)
                     if plot.getViewBox().sceneBoundingRect().contains(scene_pos)), None)

    # --- drawing ------------------------------------------------------------------------
    def show_patterns(self, site: str, heads_site: str, patterns: np.ndarray,
                      tokens: Sequence[str], ablated: frozenset[int]) -> None:
        """Draw ``patterns`` (H, T, T) of pattern ``site``; ``tokens`` label both axes."""
        if site != self.site or len(self.tiles) != patterns.shape[0]:
            self._rebuild(patterns.shape[0])
            self.selected = min(self.selected, patterns.shape[0] - 1)
        self.site, self.heads_site = site, heads_site
        self.patterns = np.ascontiguousarray(patterns, dtype=np.float32)
        self.tokens, self.ablated = list(tokens), frozenset(ablated)
        self.hover.setText(HINT)  # the old read-out named another layer or old values
        t = self.patterns.shape[-1]
        for h, tile in enumerate(self.tiles):
            tile.values = self.patterns[h]
            tile.setImage(self.patterns[h], levels=(0, 1), lut=self._lut)
            self._frames[h].setRect(0, 0, t, t)
        for plot in self._boxes:
            for axis in ("left", "bottom"):
                plot.getAxis(axis).set_tokens(self.tokens)
            plot.getViewBox().setRange(xRange=(0, t), yRange=(0, t), padding=0.02)
        self.title.setText(f"{layer_of(site)} — {len(self.tiles)} heads on {t} tokens · "
                           "rows: query, columns: key")
        self._mark()
        self._show_detail()
        self._fill_table()
        self.drawn.emit(site)

    def _rebuild(self, n: int) -> None:
        self.grid.clear()
        self.grid.ci.layout.setSpacing(3)
        self._cols = max(1, math.ceil(math.sqrt(n)))
        self.tiles, self._frames, self._titles, self._boxes = [], [], [], []
        for h in range(n):
            # Token labels along the grid's left and bottom edges: every tile has the
            # same tokens, and small tiles need the room.
            plot = tile_plot(self.grid, h // self._cols, h % self._cols,
                             left=h % self._cols == 0, bottom=h + self._cols >= n)
            tile = ValueImageItem(h, self._on_tile_clicked, self._hover_handler(h))
            frame = pg.QtWidgets.QGraphicsRectItem()
            frame.setZValue(10)
            for item in (tile, frame):
                plot.addItem(item)
            caption = Caption(plot)
            caption.setText(f"H{h}")
            self.tiles.append(tile)
            self._frames.append(frame)
            self._titles.append(caption)
            self._boxes.append(plot)

    def _mark(self) -> None:
        scores = self._layer_scores()
        for h, frame in enumerate(self._frames):
            off = h in self.ablated
            frame.setPen(OFF_PEN if off else SELECTED_PEN if h == self.selected else PLAIN_PEN)
            text = f"H{h}" + (" OFF" if off else "")
            if scores is not None:  # the scores too, where the tile is wide enough
                full = f"H{h} prev {scores[0][h]:.2f} · ind {scores[1][h]:.2f}" + \
                    (" OFF" if off else "")
                text = full if self._caption_fits(full) else text
            self._titles[h].setText(text)
            if scores is not None:
                self.tiles[h].setToolTip(f"head {h}: previous token {scores[0][h]:.2f}, "
                                         f"induction {scores[1][h]:.2f}, first token "
                                         f"{scores[2][h]:.2f}")
            self._titles[h].setColor("#ff6b63" if off else "#dddddd")

    def _caption_fits(self, text: str) -> bool:
        """A caption wider than its tile would widen the tile's plot past its cell (and
        push the pattern out of sight), so long ones are used only where they fit."""
        font = QFont()
        font.setPointSize(8)
        room = self.grid.width() / max(self._cols, 1) - 16
        return QFontMetrics(font).horizontalAdvance(text) <= room

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self.tiles:
            self._mark()

    def _show_detail(self) -> None:
        if not len(self.tiles):
            return
        h = self.selected
        self.detail_image.values = self.patterns[h]
        self.detail_image.setImage(self.patterns[h], levels=(0, 1), lut=self._lut)
        for axis in ("left", "bottom"):
            self.detail.getAxis(axis).set_tokens(self.tokens)
        self.detail.getViewBox().enableAutoRange(enable=True)
        state = " (switched off)" if h in self.ablated else ""
        self.detail_title.setText(f"{layer_of(self.site)} · head {h}{state}")

    def _layer_scores(self):
        if self.scores is None or self.site not in self.scores.sites:
            return None
        i = self.scores.sites.index(self.site)
        return self.scores.previous_token[i], self.scores.induction[i], self.scores.first_token[i]

    def set_metric(self, metric: str) -> None:
        """What the model's score is ("accuracy" or "cosine"): it names the importance
        chart's axis and the table's last column."""
        self.score_metric = metric

    def set_scores(self, scores: HeadScores) -> None:
        self.scores = scores
        self._fill_table()
        self._mark()

    def set_importance(self, baseline: float, sweeps: Sequence,
                       metric: Optional[str] = None) -> None:
        """Chart what each head's removal costs (``sweeps``: one
        core.analysis.evaluate.Sweep per layer), in the units of their ``metric``."""
        if metric is None:
            metric = getattr(sweeps[0], "metric", None) if sweeps else None
        self.score_metric = metric or self.score_metric
        metric = self.score_metric
        for sweep in sweeps:
            self.importance[sweep.site] = sweep.score
        self.chart.show_sweeps(baseline, sweeps, metric)
        self.table.setHorizontalHeaderItem(4, QTableWidgetItem(IF_OFF.get(metric,
                                                                          IF_OFF["accuracy"])))
        self._fill_table()
        self.drawn.emit(self.site)

    def clear_importance(self, metric: Optional[str] = None) -> None:
        """No head importance (another model opened): an empty chart whose axis names
        ``metric``, the caption asking for a run, "–" in the table's last column."""
        self.importance = {}
        if metric is not None:
            self.score_metric = metric
        self.chart.mode = "zero"
        self.chart.clear(EMPTY_CHART, self.score_metric)
        self.table.setHorizontalHeaderItem(4, QTableWidgetItem(
            IF_OFF.get(self.score_metric, IF_OFF["accuracy"])))
        self._fill_table()

    def _fill_table(self) -> None:
        if self.scores is None:
            return
        rows = [(layer, h) for layer in range(len(self.scores.sites))
                for h in range(self.scores.previous_token.shape[1])]
        self.table.setRowCount(len(rows))
        for r, (layer, h) in enumerate(rows):
            site = self.scores.sites[layer]
            heads = f"{layer_of(site)}.heads"
            acc = self.importance.get(heads)
            values = [f"L{layer}H{h}", f"{self.scores.previous_token[layer, h]:.2f}",
                      f"{self.scores.induction[layer, h]:.2f}",
                      f"{self.scores.first_token[layer, h]:.2f}",
                      "–" if acc is None else f"{acc[h]:.3f}" if self.score_metric == "cosine"
                      else f"{100 * acc[h]:.1f}%"]
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, (layer_of(site), h))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()

    # --- interaction --------------------------------------------------------------------
    def select_head(self, h: int) -> None:
        self.selected = h
        self._mark()
        self._show_detail()

    def _on_tile_clicked(self, h: int, modifiers) -> None:
        if modifiers & TOGGLE_MODIFIERS:
            self.head_toggled.emit(self.heads_site, h)
        else:
            self.select_head(h)

    def _hover_handler(self, h: int):
        def on_hover(where) -> None:
            if where is not None:
                self._say(h, *where)
        return on_hover

    def _on_detail_hover(self, where) -> None:
        if where is not None:
            self._say(self.selected, *where)

    def _say(self, h: int, row: int, col: int, value: float) -> None:
        q = self.tokens[row] if row < len(self.tokens) else "?"
        k = self.tokens[col] if col < len(self.tokens) else "?"
        self.hover.setText(f"{layer_of(self.site)} head {h}: query {row} '{q}' → key {col} "
                           f"'{k}': weight {value:.3f}")

    @Slot(int, int)
    def _on_table_clicked(self, row: int, _col: int) -> None:
        layer, h = self.table.item(row, 0).data(Qt.ItemDataRole.UserRole)
        self.selected = h
        if layer != layer_of(self.site):
            self.layer_requested.emit(layer)
        else:
            self.select_head(h)

    def numbers(self) -> tuple[tuple[str, ...], list]:
        h, t, _ = self.patterns.shape
        tok = lambda i: self.tokens[i] if i < len(self.tokens) else ""  # noqa: E731
        rows = [(layer_of(self.site), head, q, tok(q), k, tok(k),
                 f"{self.patterns[head, q, k]:.6g}", int(head in self.ablated))
                for head in range(h) for q in range(t) for k in range(t)]
        return ("layer", "head", "query", "query_token", "key", "key_token", "weight",
                "switched_off"), rows

    def set_stale(self, stale: bool) -> None:
        self.grid.setBackground("#2a2a3a" if stale else "k")
