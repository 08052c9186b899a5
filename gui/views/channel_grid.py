"""ChannelGridView: every channel's activation map of one conv-like layer."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGraphicsRectItem, QHBoxLayout, QLabel,
                               QSplitter, QVBoxLayout, QWidget)

from gui.views.imaging import CHOICES, ValueImageItem, colormap_for, levels_for
from gui.views.labels import ElidedLabel, titled
from gui.views.unit_menu import UnitPageRequests

TOGGLE_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
                    | Qt.KeyboardModifier.MetaModifier)
OFF_PEN = pg.mkPen("#ff3b30", width=4)
SELECTED_PEN = pg.mkPen("#f5c542", width=2)
PLAIN_PEN = pg.mkPen("#444", width=1)
DEAD_PEN = pg.mkPen("#8a8a8a", width=1, style=Qt.PenStyle.DashLine)
#: Grey hatching over a unit that never fires: it looks switched off already.
DEAD_BRUSH = QBrush(QColor(170, 170, 170, 170), Qt.BrushStyle.BDiagPattern)
DEAD_COLOUR = "#9a9a9a"
#: The grid's colour bar and its axis, in pixels of the grid's width.
BAR_ROOM = 70
HINT = ("Click a tile to enlarge it · Ctrl+click (or Shift+click) to switch a channel off · "
        "double-click: what does it do?")


def off_word(mode: str) -> str:
    """How a switched-off unit is labelled: "off" is 0, "mean" its dataset average."""
    return "= mean" if mode == "mean" else "off"


def dead_note(n_dead: int, n_units: int, noun: str, n_examples: int, how: str) -> str:
    """The legend under a view with units that never fire, in plain words."""
    if not n_dead:
        return ""
    on = f"on the {n_examples} examples" if n_examples else "on any example"
    verb = "never fires" if n_dead == 1 else "never fire"
    return f"{n_dead} of {n_units} {noun} {verb} {on} ({how}): switching them off changes nothing."


#: The note's tooltip: why a unit that never fires cannot matter.
DEAD_WHY = ("A unit that never fires is 0 after its activation function (the ReLU) on every "
            "example, so the layers after it never see it: switching it off (to 0 or to "
            "its mean) leaves every output as it was.")


class ChannelGridView(QWidget):
    """Owns the channel grid, its colour bar, and the enlarged view of one channel."""

    unit_toggled = Signal(str, int)
    unit_selected = Signal(str, int)
    #: Double-click or the context menu: open the unit's page (site, unit).
    unit_page_requested = Signal(str, int)
    drawn = Signal(str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.site = ""
        self.data = np.zeros((0, 1, 1), np.float32)
        self.ablated: frozenset[int] = frozenset()
        #: unit -> ablation mode of the switched-off units ("zero" or "mean").
        self.modes: dict[int, str] = {}
        #: Units that never fire after the site's ReLU on the evaluation set.
        self.dead: frozenset[int] = frozenset()
        self.n_examples = 0
        self.selected = 0
        self.tiles: list[ValueImageItem] = []
        self._boxes: list[pg.ViewBox] = []
        self._titles: list[pg.TextItem] = []
        self._frames: list[QGraphicsRectItem] = []
        self._hatches: list[QGraphicsRectItem] = []
        self._cols = 0
        self._build()

    def _build(self) -> None:
        self.title = ElidedLabel("Select a layer in the model tree.")
        self.title.setStyleSheet("font-weight: bold;")
        self.shared = QCheckBox("Shared scale")
        self.shared.setChecked(True)
        self.shared.setToolTip("One scale for all channels (compare strengths) or one per "
                               "channel (see each channel's pattern).")
        self.cmap = QComboBox()
        self.cmap.addItems(CHOICES)
        self.cmap.setToolTip("Colours — auto: diverging around 0 for signed maps, viridis "
                             "otherwise")
        bar = QHBoxLayout()
        bar.addWidget(self.title, 1)
        bar.addWidget(self.shared)
        bar.addWidget(self.cmap)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet(f"color: {DEAD_COLOUR}; font-size: 11px;")
        self.note.setToolTip(DEAD_WHY)
        self.note.hide()
        self.grid = pg.GraphicsLayoutWidget()
        # Re-flowed when its shape changes (a unit page opening beside it): columns
        # fitted to the old shape left 20-px tiles in a tall narrow grid.
        self.grid.installEventFilter(self)
        # The enlarged tile's title is a label above it, not the plot's own title: that
        # one keeps a narrow plot as wide as its text and pushes the tile out of view.
        self.detail_title = ElidedLabel("")
        self.detail_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail = pg.PlotWidget()
        self.detail.setAspectLocked(True)
        self.detail.invertY(True)
        self.detail_image = pg.ImageItem(axisOrder="row-major")
        self.detail.addItem(self.detail_image)
        split = QSplitter()
        split.addWidget(self.grid)
        split.addWidget(titled(self.detail_title, self.detail))
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([600, 340])
        self.hover = ElidedLabel(HINT)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.note)
        layout.addWidget(split, 1)
        layout.addWidget(self.hover)
        self.shared.toggled.connect(self._on_style_changed)
        self.cmap.currentTextChanged.connect(self._on_style_changed)
        self.page_requests = UnitPageRequests(
            self.grid.scene(), self._unit_at,
            lambda unit: self.unit_page_requested.emit(self.site, unit), self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if watched is self.grid and event.type() == QEvent.Type.Resize:
            n = len(self.tiles)
            if n and self._columns(n) != self._cols:
                self._reflow(self._columns(n))
        return super().eventFilter(watched, event)

    def _reflow(self, cols: int) -> None:
        """Move the tiles (and the colour bar) into ``cols`` columns, keeping them."""
        ci = self.grid.ci
        for item in (*self._boxes, self.bar):
            ci.layout.removeAt(ci.itemIndex(item))
        ci.rows, ci.items = {}, {}
        n = len(self._boxes)
        places = [(box, unit // cols, unit % cols, 1) for unit, box in enumerate(self._boxes)]
        places.append((self.bar, 0, cols, max(math.ceil(n / cols), 1)))
        for item, row, col, rowspan in places:
            ci.layout.addItem(item, row, col, rowspan, 1)
            ci.rows.setdefault(row, {})[col] = item
            ci.items[item] = [(row, col)]
        self._cols = cols

    def _columns(self, n: int) -> int:
        """The column count that gives the biggest square tiles in the grid's current
        shape (the colour bar takes about ``BAR_ROOM`` px of its width)."""
        width = max(self.grid.width() - BAR_ROOM, 1)
        height = max(self.grid.height(), 1)
        return max(range(1, max(n, 1) + 1),
                   key=lambda c: (min(width / c, height / math.ceil(n / c)), -c))

    def _unit_at(self, scene_pos) -> Optional[int]:
        """The channel whose tile is at ``scene_pos``, or ``None``."""
        return next((unit for unit, box in enumerate(self._boxes)
                     if box.sceneBoundingRect().contains(scene_pos)), None)

    def show_channels(self, site: str, data: np.ndarray, ablated: frozenset[int],
                      dead: tuple[int, ...] = (), modes: Optional[dict[int, str]] = None,
                      n_examples: int = 0) -> None:
        """Draw ``data`` (C, H, W) float32 for ``site``; ``ablated`` units are marked
        (``modes``: unit -> "zero"/"mean"), ``dead`` ones (never firing on the
        ``n_examples`` evaluation examples) hatched grey."""
        if site != self.site or data.shape[0] != len(self.tiles):
            self._rebuild(site, data.shape[0])
            self.selected = 0
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.ablated = frozenset(ablated)
        self.modes = dict(modes or {})
        self.dead = frozenset(dead)
        self.n_examples = n_examples
        # The read-out named the old layer or the old values: they are gone now.
        self.hover.setText(HINT)
        note = dead_note(len(self.dead), len(self.tiles), "channels", n_examples,
                         "hatched grey")
        self.note.setText(note)
        self.note.setVisible(bool(note))
        self._paint()
        self.drawn.emit(site)

    def numbers(self) -> tuple[tuple[str, ...], list]:
        """What the view shows, as numbers: one row per channel and pixel."""
        c, h, w = self.data.shape
        rows = [(self.site, ch, y, x, f"{self.data[ch, y, x]:.6g}", int(ch in self.ablated),
                 int(ch in self.dead))
                for ch in range(c) for y in range(h) for x in range(w)]
        return ("layer", "channel", "y", "x", "activation", "switched_off", "never_fires"), rows

    def set_stale(self, stale: bool) -> None:
        """Tint the grid while a newer result is on its way (still interactive)."""
        self.grid.setBackground("#2a2a3a" if stale else "k")

    def _rebuild(self, site: str, n: int) -> None:
        self.grid.clear()
        self.grid.ci.layout.setSpacing(3)
        self.site = site
        self.tiles, self._boxes, self._titles, self._frames = [], [], [], []
        self._hatches = []
        cols = self._cols = self._columns(n)
        font = QFont()
        font.setPointSize(8)  # small labels leave most of a small tile visible
        for unit in range(n):
            box = self.grid.addViewBox(row=unit // cols, col=unit % cols, lockAspect=True,
                                       invertY=True, enableMouse=False, enableMenu=False)
            tile = ValueImageItem(unit, self._on_tile_clicked, self._hover_handler(unit))
            label = pg.TextItem(str(unit), color="#ddd", anchor=(0, 0), fill=(0, 0, 0, 160))
            label.setFont(font)
            frame = QGraphicsRectItem()
            frame.setZValue(10)
            hatch = QGraphicsRectItem()
            hatch.setZValue(5)
            hatch.setBrush(DEAD_BRUSH)
            hatch.setPen(pg.mkPen(None))
            hatch.setVisible(False)
            hatch.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            box.addItem(tile)
            box.addItem(hatch)
            box.addItem(frame)
            box.addItem(label)
            self._frames.append(frame)
            self._hatches.append(hatch)
            self.tiles.append(tile)
            self._boxes.append(box)
            self._titles.append(label)
        rows = math.ceil(n / cols)
        self.bar = pg.ColorBarItem(interactive=False, width=12, rounding=1e-3)
        self.grid.addItem(self.bar, row=0, col=cols, rowspan=max(rows, 1))

    def _paint(self) -> None:
        cmap = colormap_for(self.cmap.currentText(), self.data)
        name = cmap.name or ""
        lut = cmap.getLookupTable(nPts=256)
        shared = self.shared.isChecked()
        levels = levels_for(self.data, name)
        for unit, tile in enumerate(self.tiles):
            tile.values = self.data[unit]
            own = levels if shared else levels_for(self.data[unit], name)
            tile.setImage(self.data[unit], levels=own, lut=lut)
            h, w = self.data.shape[1:]
            self._frames[unit].setRect(0, 0, w, h)
            self._hatches[unit].setRect(0, 0, w, h)
            # An explicit range: the label (a TextItem) would otherwise inflate autoRange.
            self._boxes[unit].setRange(xRange=(0, w), yRange=(0, h), padding=0.03)
        # The bar is a legend only (no image items attached), so per-tile levels never
        # fight over it. Per channel, it reads "each tile's own min … max".
        self.bar.setColorMap(cmap)
        self.bar.setLevels(levels if shared else (0.0, 1.0))
        scale = "shared scale" if shared else "scale per channel (0 = its min, 1 = its max)"
        c, h, w = self.data.shape
        self.title.setText(f"{self.site} — {c} channels, {h}×{w} each · {scale}")
        self._mark()
        self._show_detail(cmap)

    def _mark(self) -> None:
        for unit, frame in enumerate(self._frames):
            off, dead = unit in self.ablated, unit in self.dead
            frame.setPen(OFF_PEN if off else SELECTED_PEN if unit == self.selected
                         else DEAD_PEN if dead else PLAIN_PEN)
            word = off_word(self.modes.get(unit, "zero"))
            self._titles[unit].setText(f"{unit} {word}" if off else str(unit))
            self._titles[unit].setColor("#ff6b63" if off else DEAD_COLOUR if dead
                                        else "#dddddd")
            self._hatches[unit].setVisible(dead)
            self.tiles[unit].setOpacity(0.45 if dead and not off else 1.0)
            self.tiles[unit].setToolTip(self._unit_words(unit))

    def _unit_words(self, unit: int) -> str:
        """What a tile's tooltip and the hover line say about the unit's state."""
        parts = []
        if unit in self.ablated:
            parts.append("switched off: set to its dataset mean"
                         if self.modes.get(unit) == "mean" else "switched off: set to 0")
        if unit in self.dead:
            on = f"on any of the {self.n_examples} examples" if self.n_examples else \
                "on any example"
            parts.append(f"never fires {on} (0 after the ReLU): switching it off changes "
                         "nothing")
        return f"channel {unit}" + (" — " + "; ".join(parts) if parts else "")

    def _show_detail(self, cmap: pg.ColorMap) -> None:
        if not len(self.tiles):
            return
        unit = min(self.selected, len(self.tiles) - 1)
        img = self.data[unit]
        # The enlarged tile uses the grid's colours, so the grid's colour bar reads it.
        levels = (levels_for(self.data, cmap.name or "") if self.shared.isChecked()
                  else levels_for(img, cmap.name or ""))
        self.detail_image.setImage(img, levels=levels, lut=cmap.getLookupTable(nPts=256))
        # Auto-range mode (not a one-off autoRange) so the tile still fits after the
        # splitter or the inserted colour bar resizes the plot.
        self.detail.getViewBox().enableAutoRange(enable=True)
        state = (f" ({off_word(self.modes.get(unit, 'zero'))})" if unit in self.ablated
                 else " (never fires)" if unit in self.dead else "")
        self.detail_title.setText(f"channel {unit}{state}: {img.min():.3g} … {img.max():.3g}")

    def select_unit(self, unit: int) -> None:
        self.selected = unit
        self._mark()
        self._show_detail(colormap_for(self.cmap.currentText(), self.data))
        self.unit_selected.emit(self.site, unit)

    def _on_tile_clicked(self, unit: int, modifiers: Qt.KeyboardModifier) -> None:
        if modifiers & TOGGLE_MODIFIERS:
            self.unit_toggled.emit(self.site, unit)
        else:
            self.select_unit(unit)

    def _hover_handler(self, unit: int):
        def on_hover(where) -> None:
            if where is None:
                return
            row, col, value = where
            words = self._unit_words(unit)
            self.hover.setText(f"{self.site} · {words} · y={row}, x={col} · value {value:.4g}")
        return on_hover

    @Slot()
    def _on_style_changed(self) -> None:
        if len(self.tiles):
            self._paint()
