"""Exact per-unit sweeps that compute only what one unit's ablation can change.

A sweep switches off each unit of a site alone. Replicating the eval set once per
unit and rerunning the rest of the network costs as much as a loop of forwards; this
module plans, once per site of a sequential model, a cheaper route that gives the same
numbers (up to float rounding; :meth:`core.analysis.evaluate.Evaluator.sweep` rescores
the examples where rounding could flip an answer):

1. **Per channel.** Modules that act on each channel alone (ReLU and other
   elementwise functions, max/average pooling, BatchNorm in eval, Dropout in eval,
   Identity, a Flatten that turns channel ``c`` into a slice of features) run only on
   the ablated unit's channel: its replacement (zero or the dataset mean, the same for
   every example) runs through them once, its intact value is the cached activation.
   Examples where the two are equal are not changed by the ablation at all: their
   output is the baseline's.
2. **First linear layer.** A Conv1d/Conv2d (groups=1) or Linear mixes the channels,
   but linearly: its pre-activation changes by the layer applied to that channel's
   change alone (the weight slice of the channel, no bias). That costs 1/C of the
   layer, instead of all of it, per unit.
3. **Further linear layers** carry the change on (Linear, Conv, Flatten, average
   pooling, BatchNorm in eval, ...). If the output is reached, the logits are the
   baseline's plus the change: closed form. Otherwise the changed examples of every
   unit run, stacked, through the rest of the model from the first non-linear layer,
   starting at its cached intact input plus the change.

A site inside a block (a head of an attention layer) uses the block's traced graph
(:mod:`torch.fx`): when everything between the site and the block's output is linear
in the site's value (reshapes, a Linear, the residual add), the block's output changes
by that linear map of the unit's change, and steps 3 apply from there. Where no
shortcut applies (a non-sequential model, a layer whose change runs through a
non-linear mix such as attention), :func:`plan` returns ``None`` and the adapter runs
its replicated sweep.

What keeps it fast on a CPU, all with the same values:

* a unit's convolution change is its channel's columns (im2col) times that channel's
  weights, added onto the intact pre-activation in the same matrix product;
* a head's change stays a box (one head of zeros around it is never written) through
  the block's transposes and reshapes, and Linear layers in a row compose into one
  small matrix (out-projection times unembedding);
* units run in groups whose rows stay in the processor's cache through the wide
  layers; a max pool with kernel = stride runs as maxima of strided slices, after the
  rectifier before it (the maximum of rectified values is the rectified maximum).

Path names (:attr:`TorchAdapter.last_sweep_path`): ``closed form``, ``delta``,
``channel`` (the chain's end starts the changed rows), ``exact`` (the unit is an
output), ``replicas`` (no shortcut).

Here: planning and running. Single modules: :mod:`core.adapters.sweep_ops`; traced
blocks: :mod:`core.adapters.sweep_trace`; changes kept unevaluated (a box, a composed
linear map): :mod:`core.adapters.sweep_lazy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from math import prod
from typing import Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from core.ablation import sweep_masks
from core.adapters.sweep_lazy import Boxed, Lazy, lazy_linear_change, now
from core.adapters.sweep_ops import (
    Start,
    add_linear,
    any_per_row,
    conv_ok,
    conv_part,
    is_linear_module,
    linear_change,
    max_pool,
    mix,
    per_channel,
    per_element,
    run_module,
    run_rest,
    shared_tensor,
)
from core.adapters.sweep_trace import Block, propagate, trace_block

# max_pool and run_rest too: the fast forms that the tests check through this module.
__all__ = ["CHANNEL", "CLOSED_FORM", "DELTA", "EXACT", "REPLICAS", "Plan", "max_pool",
           "plan", "run", "run_rest"]

#: Path names, as :attr:`TorchAdapter.last_sweep_path` reports them.
CLOSED_FORM = "closed form"      # the output's change is a linear map of the unit's
EXACT = "exact"                   # the unit is part of the output: replaced in place
DELTA = "delta"                   # linear change, then the changed rows run on
CHANNEL = "channel"               # per-channel, then the changed rows run on
REPLICAS = "replicas"             # no shortcut: every unit's replica runs the model


@dataclass
class Plan:
    """How to sweep the units of one site. ``needs``: the sites whose cached intact
    outputs :meth:`run` takes (``cached``)."""

    site: str
    path: str
    needs: tuple[str, ...]
    site_shape: tuple[int, ...]
    axis: int                      # unit axis of the batched site output
    children: list                 # (name, module) of the top-level Sequential
    chain: list = field(default_factory=list)   # per-channel children after the site
    chain_end: str = ""            # the site whose output the per-channel part ends at
    flat: int = 0                  # >0: features per channel after a Flatten in chain
    mixer: Optional[nn.Module] = None
    linear: list = field(default_factory=list)  # further linear children
    base: str = ""                 # intact output the changed rows restart from
    rest: list = field(default_factory=list)    # children run on the changed rows
    output: str = ""               # the last child: its output is the baseline's
    block: Optional[Block] = None


def plan(model: nn.Module, site: str, shapes: Mapping[str, tuple[int, ...]],
         axes: Mapping[str, int]) -> Optional[Plan]:
    """The cheapest exact route for a sweep of ``site`` (see the module docstring), or
    ``None`` for the replicated sweep. ``shapes``: site -> one example's output shape;
    ``axes``: site -> unit axis of the batched output."""
    if not isinstance(model, nn.Sequential) or site not in shapes:
        return None
    children = list(model.named_children())
    names = [n for n, _ in children]
    top = site.split(".")[0]
    if top not in names or any(n not in shapes for n in names):
        return None
    shape = tuple(shapes[site])
    axis = axes.get(site, 1)
    output = names[-1]
    if top != site:
        return _nested_plan(model, site, shape, axis, children, shapes, output)
    j = names.index(site)
    p = Plan(site, CHANNEL, (), shape, axis, children, output=output)
    ndim, k = len(shape) + 1, j + 1
    while k < len(children):
        module = children[k][1]
        if per_element(module) or (axis == 1 and per_channel(module, ndim)):
            pass
        elif (isinstance(module, nn.Flatten) and not p.flat and axis == 1 and ndim > 2
              and module.start_dim == 1 and module.end_dim in (-1, ndim - 1)):
            p.flat = prod(shapes[names[k - 1]][1:])
            ndim = 2
        elif isinstance(module, nn.Flatten) and ndim == 2:
            pass
        else:
            break
        p.chain.append(children[k])
        k += 1
    p.chain_end = names[k - 1]
    if k == len(children):
        p.path, p.needs = EXACT, (p.chain_end,)
        return p
    module = children[k][1]
    last = axis == ndim - 1 or (p.flat and ndim == 2)
    if (isinstance(module, nn.Linear) and last) or \
            (axis == 1 and not p.flat and conv_ok(module, ndim) and module.groups == 1):
        p.mixer = module
    if p.mixer is None:
        # Nothing linear to fold: the changed rows run on from the chain's end.
        p.base, p.rest = p.chain_end, children[k:]
        p.needs = (p.chain_end, output)
        return p
    k += 1
    while k < len(children) and is_linear_module(children[k][1]):
        p.linear.append(children[k])
        k += 1
    if k == len(children):
        p.path, p.needs = CLOSED_FORM, (p.chain_end, output)
    else:
        p.path, p.base, p.rest = DELTA, names[k - 1], children[k:]
        p.needs = (p.chain_end, p.base, output)
    return p


def _nested_plan(model, site, shape, axis, children, shapes, output) -> Optional[Plan]:
    names = [n for n, _ in children]
    j = names.index(site.split(".")[0])
    block = trace_block(children[j][1], site.partition(".")[2])
    if block is None:
        return None
    p = Plan(site, CLOSED_FORM, (), shape, axis, children, output=output, block=block)
    k = j + 1
    while k < len(children) and is_linear_module(children[k][1]):
        p.linear.append(children[k])
        k += 1
    if k == len(children):
        p.needs = (site, output)
    else:
        p.path, p.base, p.rest = DELTA, names[k - 1], children[k:]
        p.needs = (site, p.base, output)
    return p


# --- running a plan -------------------------------------------------------------------


def run(p: Plan, units: Sequence[int], mode: str, means: Optional[Mapping],
        cached: Mapping[str, np.ndarray], inputs: Optional[np.ndarray] = None
        ) -> np.ndarray:
    """Outputs (U, N, ...) float32 with each of ``units`` of the site ablated alone.

    ``cached``: the intact outputs of ``p.needs``; ``inputs``: the input of the block
    holding a nested site (the output of the child before it, or the model inputs).
    Examples a unit's ablation does not change get the baseline's output.
    """
    units = tuple(units)
    _, fill = sweep_masks(p.site, units, mode, p.site_shape, p.axis - 1, means or {})
    # Zero ablations come back as a (U, 1, ...) fill of zeros: the replacement's shape.
    fill = np.array(np.broadcast_to(fill, (len(units), *p.site_shape)), np.float32)
    baseline = shared_tensor(cached[p.output])
    n = len(baseline)
    with torch.inference_mode():
        out = torch.empty(len(units), *baseline.shape)
        filled = [False] * len(units)

        def put(unit: int, rows_u: torch.Tensor, new_rows: torch.Tensor) -> None:
            if len(rows_u) == n:
                out[unit].copy_(new_rows)
            else:
                out[unit].copy_(baseline)
                out[unit].index_copy_(0, rows_u, new_rows)
            filled[unit] = True

        def put_all(group: list, new: torch.Tensor) -> None:
            offset = 0
            for (unit, rows_u), _ in group:
                put(unit, rows_u, new[offset:offset + len(rows_u)])
                offset += len(rows_u)

        if p.block is not None:
            rows, parts = _block_changes(p, units, fill, cached, inputs)
        else:
            rows, parts = _channel_changes(p, units, fill, cached)
        start = {CLOSED_FORM: baseline, DELTA: shared_tensor(cached[p.base]) if p.base else None
                 }.get(p.path)
        rest = [module for _, module in p.rest]
        changed = [(i, idx) for i, idx in enumerate(rows.per_unit) if len(idx)]
        width = prod(start.shape[1:]) if start is not None else prod(baseline.shape[1:])
        # Without linear layers between, each unit's change is added onto its rows of
        # the intact values as it is computed (fused into the product where it can).
        # (A block's parts carry the change through the linear children themselves.)
        fused = Start(start) if start is not None and (not p.linear or p.block) else None
        narrow, done = [], 0
        for group in _groups(changed, parts, width):
            if not rest and (fused is not None or p.path == EXACT):
                for (unit, rows_u), part in group:
                    # The output's rows already: written in place where they all change.
                    into = out[unit] if len(rows_u) == n and fused is not None else None
                    piece = part(fused, into) if into is not None else part(fused)
                    if piece is not into:
                        put(unit, rows_u, piece)
                    filled[unit] = True
                continue
            pieces = [part(fused) for _, part in group]
            new = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
            if fused is None:
                for _, module in ([] if p.block else p.linear):
                    new = linear_change(module, new)
                if start is not None:
                    new = start.index_select(0, torch.cat([i for (_, i), _ in group])).add_(new)
            # The rest of the model, per group while rows are wide; narrower rows wait
            # to run the remaining layers all together.
            new, done = run_rest(rest, new, wide=GROUP_ELEMENTS // 1024)
            if done == len(rest):
                put_all(group, new)
            else:
                narrow.append((group, new))
        if narrow:
            new = torch.cat([part for _, part in narrow]) if len(narrow) > 1 else narrow[0][1]
            new, _ = run_rest(rest[done:], new)
            put_all([item for group, _ in narrow for item in group], new)
        for unit, done_unit in enumerate(filled):
            if not done_unit:
                out[unit].copy_(baseline)
    return out.numpy()


#: Elements (of the widest tensor of the changed rows) processed at once: a group of
#: units whose rows stay in the processor's cache through the rest of the model.
GROUP_ELEMENTS = 1 << 20


def _groups(changed: list, parts: list, width: int) -> Iterator[list]:
    """``(unit, rows), part`` pairs in groups of at most :data:`GROUP_ELEMENTS`."""
    group, size = [], 0
    for item in zip(changed, parts):
        rows = len(item[0][1])
        if group and size + rows * width > GROUP_ELEMENTS:
            yield group
            group, size = [], 0
        group.append(item)
        size += rows * width
    if group:
        yield group


@dataclass
class _Rows:
    """Which examples each unit changes (an index tensor per unit, maybe empty)."""

    per_unit: list


def _chain(p: Plan, x: torch.Tensor) -> torch.Tensor:
    for _, module in p.chain:
        x = run_module(module, x)
    return x


def _channel_changes(p: Plan, units, fill: np.ndarray, cached):
    """Per unit: the examples its ablation changes, and a function giving for those
    either the new output rows (EXACT), the replica rows at the chain's end (CHANNEL)
    or the mixing layer's output change (CLOSED_FORM, DELTA; added onto the intact
    values when given a :class:`Start`)."""
    intact = shared_tensor(cached[p.chain_end])
    # The replacement is the same for every example: one pass for all units.
    replaced = _chain(p, torch.from_numpy(np.ascontiguousarray(fill)))
    axis = 1 if p.flat else p.axis
    # Which examples each unit changes, all units in one comparison.
    index = torch.tensor(units, dtype=torch.long)
    if p.flat:
        grid, new_grid = intact.view(len(intact), -1, p.flat), replaced.view(len(units), -1, p.flat)
    else:
        grid, new_grid = intact.movedim(axis, 1), replaced.movedim(axis, 1)
    every = units == tuple(range(grid.shape[1]))
    olds = grid if every else grid.index_select(1, index)
    news = new_grid[torch.arange(len(units)), index]
    differs = any_per_row((olds != news.unsqueeze(0)).reshape(len(intact) * len(units), -1))
    differs = differs.view(len(intact), len(units))
    conv = isinstance(p.mixer, nn.Conv2d) and not isinstance(p.mixer.padding, str)
    per_unit, parts = [], []
    for i, unit in enumerate(units):
        lo, width = (unit * p.flat, p.flat) if p.flat else (unit, 1)
        rows = torch.nonzero(differs[:, i]).flatten()
        per_unit.append(rows)
        if not len(rows):
            continue
        old = intact.narrow(axis, lo, width)
        new = replaced[i:i + 1].narrow(axis, lo, width)
        if conv:
            parts.append(partial(conv_part, p.mixer, old, new, unit, rows))
        else:
            parts.append(partial(_channel_part, p, intact, old, new, rows, lo, width, axis))
    return _Rows(per_unit), parts


def _channel_part(p: Plan, intact, old, new, rows, lo: int, width: int, axis: int,
                  start: Optional[Start] = None, into: Optional[torch.Tensor] = None):
    """One unit's changed rows: the new values at the chain's end (no mixing layer)
    or the change of the mixing layer's output (plus ``start``'s rows, if given)."""
    if p.mixer is None:
        part = intact.index_select(0, rows)
        part.narrow(axis, lo, width).copy_(new.expand_as(old[rows]))
        return part
    change = new - (old if len(rows) == len(old) else old.index_select(0, rows))
    return mix(p.mixer, change, lo, width, start, rows, into)


# --- blocks: a nested site, through the block's traced graph -------------------------


def _block_changes(p: Plan, units, fill: np.ndarray, cached, inputs: np.ndarray):
    """Per unit: the examples its ablation changes and the change of the block's
    output on them, through the block's linear graph."""
    intact = shared_tensor(cached[p.site])
    x = shared_tensor(np.asarray(inputs))
    fills = torch.from_numpy(np.ascontiguousarray(fill))
    per_unit, parts = [], []
    for i, unit in enumerate(units):
        old = intact.narrow(p.axis, unit, 1)
        new = fills[i:i + 1].narrow(p.axis, unit, 1)
        rows = torch.nonzero(any_per_row(old != new)).flatten()
        per_unit.append(rows)
        if not len(rows):
            continue
        parts.append(partial(_block_part, p, x, old, new, rows, unit, intact.shape[1:]))
    return _Rows(per_unit), parts


def _block_part(p: Plan, x, old, new, rows, unit: int, shape,
                start: Optional[Start] = None, into: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
    """One unit's change of the output of the block's linear children that follow
    (plus ``start``'s rows, if given; written into ``into`` if given)."""
    every = len(rows) == len(x)
    start_at = [0] * (len(shape) + 1)
    start_at[p.axis] = unit
    change = Boxed(new - (old if every else old.index_select(0, rows)), tuple(start_at),
                   (len(rows), *shape))
    out = propagate(p.block, x if every else x.index_select(0, rows), change)
    for _, module in p.linear:
        out = lazy_linear_change(module, out)
    if start is None:
        return now(out)
    if isinstance(out, Lazy):
        return add_linear(start.rows(rows), out.x, out.weight, into)
    return start.rows(rows).add(now(out)) if into is None else \
        torch.add(start.rows(rows), now(out), out=into)
