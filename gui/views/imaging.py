"""Shared pieces of the image views: colour maps, levels, and a hoverable, clickable
image item (subclassed, never patched onto instances)."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

SEQUENTIAL = "viridis"
DIVERGING = "CET-D1"
CHOICES = ("auto", "viridis", "inferno", "cividis", "CET-D1")


def colormap_for(choice: str, data: np.ndarray) -> pg.ColorMap:
    """``auto``: a diverging map centred on 0 for signed data (pre-ReLU), else viridis."""
    if choice == "auto":
        choice = DIVERGING if float(np.min(data)) < 0 else SEQUENTIAL
    return pg.colormap.get(choice)


def levels_for(data: np.ndarray, cmap_name: str) -> tuple[float, float]:
    """Explicit levels (never auto-levels): symmetric for a diverging map."""
    lo, hi = float(np.min(data)), float(np.max(data))
    if cmap_name.startswith("CET-D"):
        m = max(abs(lo), abs(hi), 1e-6)
        return -m, m
    if hi - lo < 1e-6:
        return lo, lo + 1.0
    return lo, hi


def gray_to_uint8(img: np.ndarray) -> np.ndarray:
    """(h, w) 0..1 float -> contiguous uint8 for a QImage."""
    return np.ascontiguousarray(np.clip(img * 255, 0, 255).astype(np.uint8))


ClickHandler = Callable[[int, Qt.KeyboardModifier], None]
HoverHandler = Callable[[Optional[tuple[int, int, float]]], None]


class ValueImageItem(pg.ImageItem):
    """An image tile that reports the value under the mouse and clicks on itself.

    ``values`` keeps the raw numbers so hover shows them even when the drawn image is
    normalised per tile.
    """

    def __init__(self, unit: int, on_click: ClickHandler, on_hover: HoverHandler) -> None:
        super().__init__(axisOrder="row-major")
        self.unit = unit
        self.values = np.zeros((1, 1), np.float32)
        #: (row, col) of the last click, for views that need the pixel, not the tile.
        self.last_click: tuple[int, int] = (0, 0)
        self._on_click = on_click
        self._on_hover = on_hover
        self.setAcceptHoverEvents(True)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (Qt override)
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.last_click = (int(ev.pos().y()), int(ev.pos().x()))
            self._on_click(self.unit, ev.modifiers())

    def hoverEvent(self, ev) -> None:  # noqa: N802 (Qt override)
        if ev.isExit():
            self._on_hover(None)
            return
        pos = ev.pos()
        row, col = int(pos.y()), int(pos.x())
        h, w = self.values.shape
        if 0 <= row < h and 0 <= col < w:
            self._on_hover((row, col, float(self.values[row, col])))
