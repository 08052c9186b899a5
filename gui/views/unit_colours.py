"""Colour for unit pages: how a unit's value becomes a see-through colour over an input
(or a token's background), shared by a page's strips, how many columns a grid of
cells takes, and how the page writes a value."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QColor, QImage

from core.unit_values import ExampleStrip

#: Positive activation is drawn warm, negative cool, both see-through over grey.
WARM = (255, 120, 30)
COOL = (60, 150, 255)
MAX_ALPHA = 0.62
#: Significant digits of every value the page writes (7.00, 7.69, -0.0744, 12.3).
DIGITS = 3


def sig(value: float, digits: int = DIGITS) -> str:
    """``value`` with ``digits`` significant digits, trailing zeros kept so a column of
    values reads alike: 7 -> "7.00", 7.693 -> "7.69", -0.07441 -> "-0.0744", 123.4 ->
    "123", 1234.4 -> "1234"; tiny values in exponent form (1.23e-05)."""
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return f"{0:.{digits - 1}f}"
    rounded = float(f"{v:.{digits - 1}e}")        # 9.996 -> 10.0: count from there
    magnitude = math.floor(math.log10(abs(rounded)))
    if magnitude < -4:
        return f"{v:.{digits - 1}e}"
    if magnitude >= digits:                         # whole numbers stay whole
        return f"{v:.0f}"
    return f"{rounded:.{max(digits - 1 - magnitude, 0)}f}"


def columns(n: int, most: int) -> int:
    """How many columns ``n`` cells take when at most ``most`` fit: the fewest rows,
    then the fullest last row (16 examples in 4 × 4, not 5 + 5 + 5 + 1)."""
    most = max(1, min(n, most))
    least = max(1, -(-most * 3 // 5))
    return min(range(least, most + 1), key=lambda c: (-(-n // c), -(n % c or c), -c))


@dataclass(frozen=True)
class ColourScale:
    """How a value becomes colour strength in -1..1, shared by a page's strips. Signed
    values (some below 0): 0 is clear, ±``top`` full warm or cool. Values that are never
    below 0: clear at the lowest shown (``lo``), full warm at the highest (``hi``), so a
    unit that is always on still shows where it is most on."""

    lo: float
    hi: float

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def top(self) -> float:
        return max(abs(self.lo), abs(self.hi), 1e-9)

    def strength(self, values) -> np.ndarray:
        v = np.asarray(values, np.float32)
        if self.signed:
            return np.clip(v / self.top, -1.0, 1.0)
        return np.clip((v - self.lo) / max(self.hi - self.lo, 1e-9), 0.0, 1.0)

    def words(self) -> str:
        if self.signed:
            return f"orange positive, blue negative, full colour at ±{sig(self.top)}"
        return f"clear at {sig(self.lo)}, full orange at {sig(self.hi)}"


def strip_scale(*strips: ExampleStrip) -> ColourScale:
    """The colour scale of the strips' maps (their values where there are no maps)."""
    parts = [s.maps for s in strips if s.maps is not None and s.maps.size]
    if not parts:
        parts = [s.values for s in strips if s.values.size]
    if not parts:
        return ColourScale(0.0, 1.0)
    lo = float(min(np.min(p) for p in parts))
    hi = float(max(np.max(p) for p in parts))
    if lo >= 0 and hi - lo < 1e-9:
        lo = 0.0
    return ColourScale(lo, max(hi, lo + 1e-9))


def overlay(values: np.ndarray, scale: ColourScale) -> QImage:
    """(H, W) activations -> an RGBA image: warm where positive, cool where negative,
    the more opaque the stronger."""
    v = scale.strength(values)
    rgba = np.zeros(v.shape + (4,), np.uint8)
    pos = v >= 0
    for c in range(3):
        rgba[..., c] = np.where(pos, WARM[c], COOL[c])
    rgba[..., 3] = (np.abs(v) ** 0.8 * MAX_ALPHA * 255).astype(np.uint8)
    return _qimage(rgba, QImage.Format.Format_RGBA8888)


def grey(picture: np.ndarray) -> QImage:
    """(h, w) 0..1 -> a dimmed grey image (so the colour over it reads)."""
    g = (28 + 180 * np.clip(np.asarray(picture, np.float32), 0, 1)).astype(np.uint8)
    return _qimage(g, QImage.Format.Format_Grayscale8)


def _qimage(arr: np.ndarray, fmt) -> QImage:
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, arr.strides[0], fmt).copy()  # owns its pixels


def value_colour(value: float, scale: ColourScale) -> QColor:
    """A token cell's background: the overlay colour over a light page."""
    t = float(scale.strength(value))
    base = WARM if t >= 0 else COOL
    a = abs(t) ** 0.8
    return QColor(*(int(255 + a * (c - 255)) for c in base))
