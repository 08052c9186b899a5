"""A unit's change in a form that costs less than the tensor it stands for, for the
sweep through a traced block (:mod:`core.adapters.sweep_trace`): a linear map not
applied yet, which the linear maps after it compose into; a box of nonzeros (one
head, one channel) that shape operations move without writing the zeros around it."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.adapters.sweep_ops import linear_change


@dataclass
class Lazy:
    """``F.linear(x, weight)``, not computed yet: linear maps that follow compose into
    one weight (an out-projection and an unembedding become one small matrix)."""

    x: torch.Tensor
    weight: torch.Tensor

    @property
    def shape(self) -> tuple:
        return (*self.x.shape[:-1], self.weight.shape[0])

    def scaled(self, factor: float) -> Lazy:
        return Lazy(self.x, self.weight * factor)

    def then(self, weight: torch.Tensor) -> Lazy:
        """Followed by ``F.linear(., weight)``."""
        return Lazy(self.x, weight @ self.weight)

    def value(self) -> torch.Tensor:
        return F.linear(self.x, self.weight)


@dataclass
class Boxed:
    """A change that is zero outside one box of its tensor (one head, one channel):
    ``sub`` holds the box, which starts at ``start`` in a tensor of ``shape``. Shape
    operations move the box without writing the zeros around it."""

    sub: torch.Tensor
    start: tuple
    shape: tuple

    def value(self) -> torch.Tensor:
        full = self.sub.new_zeros(self.shape)
        full[tuple(slice(a, a + n) for a, n in zip(self.start, self.sub.shape))] = self.sub
        return full

    def scaled(self, factor: float) -> Boxed:
        return Boxed(self.sub * factor, self.start, self.shape)

    def permuted(self, dims: Sequence[int]) -> Boxed:
        dims = [d % len(self.shape) for d in dims]
        return Boxed(self.sub.permute(*dims), tuple(self.start[d] for d in dims),
                     tuple(self.shape[d] for d in dims))

    def reshaped(self, shape: Sequence[int]) -> Optional[Boxed]:
        """The box in a view of ``shape``, if it is a box there; ``None`` if not."""
        shape = list(shape)
        if shape.count(-1) == 1:
            shape[shape.index(-1)] = prod(self.shape) // max(1, -prod(shape))
        if prod(shape) != prod(self.shape):
            return None
        start, size = [], []
        # Match groups of old and new dimensions with equal products.
        i = j = 0
        while i < len(self.shape) or j < len(shape):
            gi, gj = [i], [j]
            pi, pj = self.shape[i] if i < len(self.shape) else 1, shape[j] if j < len(shape) else 1
            i, j = i + 1, j + 1
            while pi != pj:
                if pi < pj:
                    pi *= self.shape[i]
                    gi.append(i)
                    i += 1
                else:
                    pj *= shape[j]
                    gj.append(j)
                    j += 1
            gi = [d for d in gi if d < len(self.shape)]
            gj = [d for d in gj if d < len(shape)]
            flat = _box_to_range([self.start[d] for d in gi],
                                 [self.sub.shape[d] for d in gi], [self.shape[d] for d in gi])
            box = None if flat is None else _range_to_box(*flat, [shape[d] for d in gj])
            if box is None:
                return None
            start += box[0]
            size += box[1]
        return Boxed(self.sub.reshape(size), tuple(start), tuple(shape))


def _box_to_range(start, size, dims) -> Optional[tuple[int, int]]:
    """The flat index range of a box in row-major ``dims``, if it is one range: single
    indices first, then one dimension partly covered, then whole dimensions."""
    j = 0
    while j < len(dims) and size[j] == 1:
        j += 1
    outer = int(np.ravel_multi_index(start[:j], dims[:j])) if j else 0
    if j == len(dims):
        return outer, outer + 1
    if any(start[d] != 0 or size[d] != dims[d] for d in range(j + 1, len(dims))):
        return None
    inner = prod(dims[j + 1:])
    return ((outer * dims[j] + start[j]) * inner,
            (outer * dims[j] + start[j] + size[j]) * inner)


def _range_to_box(lo: int, hi: int, dims) -> Optional[tuple[list, list]]:
    """The box of row-major ``dims`` covering flat indices lo..hi-1, if there is one."""
    if not dims:
        return ([], []) if (lo, hi) == (0, 1) else None
    for j in range(len(dims)):
        inner = prod(dims[j + 1:])
        if lo % inner or hi % inner:
            continue
        q_lo, q_hi = lo // inner, hi // inner
        if q_lo // dims[j] != (q_hi - 1) // dims[j]:
            continue
        outer, a = divmod(q_lo, dims[j])
        start = list(np.unravel_index(outer, dims[:j])) if j else []
        return ([int(v) for v in start] + [a] + [0] * (len(dims) - j - 1),
                [1] * j + [q_hi - q_lo] + list(dims[j + 1:]))
    return None


def now(v):
    """A change as a tensor."""
    return v.value() if isinstance(v, (Lazy, Boxed)) else v


def lazy_linear_change(module: nn.Module, delta) -> Any:
    """:func:`linear_change`, kept unevaluated through a Linear."""
    if isinstance(module, nn.Linear):
        if isinstance(delta, Boxed):
            # A box whole but in its last dimension: that slice of the weights.
            whole = all(a == 0 and n == d for a, n, d in
                        zip(delta.start[:-1], delta.sub.shape[:-1], delta.shape[:-1]))
            if whole:
                lo = delta.start[-1]
                return Lazy(delta.sub, module.weight[:, lo:lo + delta.sub.shape[-1]])
            delta = delta.value()
        if isinstance(delta, Lazy):
            o1, k = delta.weight.shape
            if module.out_features * k <= o1 * (k + module.out_features):
                return delta.then(module.weight)
            delta = delta.value()
        return Lazy(delta, module.weight)
    return linear_change(module, now(delta))
