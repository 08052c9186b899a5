"""Which examples a unit responds to, across the data (issue #13): one pass over a
layer's cached output gives every unit's peak activation per example, and from it the
top-k and bottom-k examples of any unit, its histogram and its mean per class.

A unit's *activation map* on one example is what the unit page overlays: the channel's
(H, W) map, a sequence feature's value per token, a head's output norm per token. Its
*peak* is the map's maximum over the example's real positions (padding excluded); a
neuron's map is its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from core.kinds import LayerView
from core.model import LayerInfo

#: Bins of the unit page's histogram.
BINS = 30


@dataclass(frozen=True)
class UnitIndex:
    """Every unit's peak over every example of one site.

    ``peak`` (N, U) float32; ``where`` (N, U) int64 the flat position of the peak in the
    map; ``maps`` (N, U, *map) float32 view of the maps (no copy where the layout
    allows); ``per_token`` whether maps run over token positions.
    """

    site: str
    peak: np.ndarray
    where: np.ndarray
    maps: np.ndarray
    per_token: bool

    def ranked(self, unit: int, k: int, lowest: bool = False) -> np.ndarray:
        """The ``k`` examples with the highest (or lowest) peak, ties broken by index."""
        values = self.peak[:, unit]
        order = np.argsort(values if lowest else -values, kind="stable")
        return order[:k].astype(np.int64)


def unit_maps(acts: np.ndarray, info: LayerInfo) -> tuple[np.ndarray, bool]:
    """(N, U, *map) activation maps of every unit, and whether the map is per token.

    Channels: (N, C, H, W) as is. Sequence features (N, T, F): (N, F, T). Heads
    (N, heads, T, D): the output vector's norm per token, (N, heads, T). Attention
    patterns (N, heads, T, T): each query's strongest weight, (N, heads, T). Neurons
    (N, F): (N, F), no map.
    """
    if info.view is LayerView.SEQUENCE or (acts.ndim == 3 and info.unit_axis == 1):
        return np.moveaxis(acts, 2, 1), True
    if acts.ndim == 4 and info.kind == "HeadOutputs":
        return np.linalg.norm(acts, axis=-1).astype(np.float32), True
    if acts.ndim == 4 and info.kind == "Pattern":
        return acts.max(axis=-1), True
    return np.moveaxis(acts, info.unit_axis + 1, 1), False


def build_index(site: str, acts: np.ndarray, info: LayerInfo,
                valid: Optional[np.ndarray] = None) -> UnitIndex:
    """The :class:`UnitIndex` of ``acts`` (N, *shape), the site's unablated output over
    the evaluation set. ``valid`` (N, T) bool marks real tokens for token models."""
    maps, per_token = unit_maps(acts, info)
    n, u = maps.shape[:2]
    flat = maps.reshape(n, u, -1)
    if per_token and valid is not None and flat.shape[2] == valid.shape[1]:
        flat = np.where(valid[:, None, :], flat, -np.inf)
    if flat.shape[2] == 0:
        return UnitIndex(site, np.zeros((n, u), np.float32), np.zeros((n, u), np.int64),
                         maps, per_token)
    where = flat.argmax(axis=2)
    peak = np.take_along_axis(flat, where[:, :, None], axis=2)[:, :, 0]
    return UnitIndex(site, peak.astype(np.float32), where.astype(np.int64), maps, per_token)


def histogram(values: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges of ``values``; one bin around the value when all are equal."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return counts.astype(np.int64), edges.astype(np.float32)


def group_means(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of ``values`` per group (NaN for an empty group); groups < 0 are ignored."""
    out = np.full(n_groups, np.nan)
    for g in range(n_groups):
        chosen = values[groups == g]
        if chosen.size:
            out[g] = float(chosen.mean())
    return out
