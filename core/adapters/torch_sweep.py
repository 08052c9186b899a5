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
"""

from __future__ import annotations

import logging
import operator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from math import prod
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from core.ablation import sweep_masks

log = logging.getLogger(__name__)

#: Modules that map each element alone (in eval mode).
ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU,
               nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softsign,
               nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Tanhshrink, nn.Identity)
DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
#: Modules that act on each channel (axis 1) alone.
POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
        nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.LPPool1d,
        nn.LPPool2d)
BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
#: Linear (no bias) modules that a change passes through as the module itself.
LINEAR_AS_IS = (nn.Flatten, nn.Unflatten, nn.Identity, nn.AvgPool1d, nn.AvgPool2d,
                nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d) + DROPOUT
CONV = (nn.Conv1d, nn.Conv2d)

#: Path names, as :attr:`TorchAdapter.last_sweep_path` reports them.
CLOSED_FORM = "closed form"      # the output's change is a linear map of the unit's
EXACT = "exact"                   # the unit is part of the output: replaced in place
DELTA = "delta"                   # linear change, then the changed rows run on
CHANNEL = "channel"               # per-channel, then the changed rows run on
REPLICAS = "replicas"             # no shortcut: every unit's replica runs the model


def _eval_mode(module: nn.Module) -> bool:
    return not module.training


def _per_element(module: nn.Module) -> bool:
    if isinstance(module, DROPOUT):
        return _eval_mode(module)
    return isinstance(module, ELEMENTWISE)


def _per_channel(module: nn.Module, ndim: int) -> bool:
    """``module`` acts on each channel of an (N, C, ...) input alone."""
    if isinstance(module, POOL):
        pool_dims = 2 if "2d" in type(module).__name__ else 1
        if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d)) and module.return_indices:
            return False
        return ndim == 2 + pool_dims
    if isinstance(module, BATCHNORM):
        return (_eval_mode(module) and module.running_mean is not None
                and ndim in ((2, 3) if isinstance(module, nn.BatchNorm1d) else (4,)))
    return False


def _conv_ok(module: nn.Module, ndim: int) -> bool:
    dims = 2 if isinstance(module, nn.Conv2d) else 1
    return (isinstance(module, CONV) and module.padding_mode == "zeros"
            and ndim == 2 + dims)


def _linear_as_is(module: nn.Module) -> bool:
    if isinstance(module, DROPOUT):
        return _eval_mode(module)
    return isinstance(module, LINEAR_AS_IS)


def linear_change(module: nn.Module, delta: torch.Tensor) -> Optional[torch.Tensor]:
    """What ``module``'s output changes by when its input changes by ``delta``, for a
    module linear in its input (bias dropped); ``None`` when it is not linear."""
    if isinstance(module, nn.Linear):
        return F.linear(delta, module.weight)
    if isinstance(module, CONV) and module.padding_mode == "zeros":
        conv = F.conv2d if isinstance(module, nn.Conv2d) else F.conv1d
        return conv(delta, module.weight, None, module.stride, module.padding,
                    module.dilation, module.groups)
    if isinstance(module, BATCHNORM) and _eval_mode(module) \
            and module.running_var is not None:
        scale = torch.rsqrt(module.running_var + module.eps)
        if module.weight is not None:
            scale = scale * module.weight
        return delta * scale.reshape(1, -1, *([1] * (delta.dim() - 2)))
    if _linear_as_is(module):
        return module(delta)
    return None


def _is_linear_module(module: nn.Module) -> bool:
    """Whether :func:`linear_change` knows ``module`` as linear in its input."""
    if isinstance(module, nn.Linear):
        return True
    if isinstance(module, CONV):
        return module.padding_mode == "zeros"
    if isinstance(module, BATCHNORM):
        return _eval_mode(module) and module.running_var is not None
    return _linear_as_is(module)


def max_pool(module: nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """``nn.MaxPool2d`` with kernel = stride and no padding, as elementwise maxima of
    strided slices: the same values (a maximum picks one of its inputs) and, on CPU,
    many times faster than the pooling kernel on NCHW tensors. ``None`` when the
    module is not such a pool."""
    if not isinstance(module, nn.MaxPool2d) or x.dim() != 4 or module.return_indices:
        return None
    pair = nn.modules.utils._pair
    k, s = pair(module.kernel_size), pair(module.stride or module.kernel_size)
    if k != s or pair(module.padding) != (0, 0) or pair(module.dilation) != (1, 1):
        return None
    h, w = x.shape[2] // k[0], x.shape[3] // k[1]
    if h == 0 or w == 0 or (module.ceil_mode and (x.shape[2] % k[0] or x.shape[3] % k[1])):
        return None
    x = x[:, :, :h * k[0], :w * k[1]]
    # Rows first (contiguous runs of a row), then columns of the half as large result.
    out = x[:, :, 0::k[0]]
    for i in range(1, k[0]):
        out = torch.maximum(out, x[:, :, i::k[0]])
    cols = out
    out = cols[..., 0::k[1]]
    for j in range(1, k[1]):
        out = torch.maximum(out, cols[..., j::k[1]])
    return out


def run_module(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)``, with the faster equal form of a max pool."""
    fast = max_pool(module, x)
    return module(x) if fast is None else fast


def _tensor(arr: np.ndarray) -> torch.Tensor:
    # Never written to in place: shares the cached array's memory where it may.
    arr = np.ascontiguousarray(arr)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


@dataclass
class _Block:
    """The traced graph of the top-level child holding a nested site, and what of it
    the change of the site's output runs through (all linear)."""

    graph: fx.Graph
    root: nn.Module
    site_node: fx.Node
    dependent: set
    meta: set
    needed: list  # independent nodes whose values the linear steps use, graph order


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
    block: Optional[_Block] = None


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
        if _per_element(module) or (axis == 1 and _per_channel(module, ndim)):
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
    if isinstance(module, nn.Linear) and last:
        p.mixer = module
    elif axis == 1 and not p.flat and _conv_ok(module, ndim) and module.groups == 1:
        p.mixer = module
    if p.mixer is None:
        # Nothing linear to fold: the changed rows run on from the chain's end.
        p.base, p.rest = p.chain_end, children[k:]
        p.needs = (p.chain_end, output)
        return p
    k += 1
    while k < len(children) and _is_linear_module(children[k][1]):
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
    while k < len(children) and _is_linear_module(children[k][1]):
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
    baseline = _tensor(cached[p.output])
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
        start = {CLOSED_FORM: baseline, DELTA: _tensor(cached[p.base]) if p.base else None
                 }.get(p.path)
        rest = [module for _, module in p.rest]
        changed = [(i, idx) for i, idx in enumerate(rows.per_unit) if len(idx)]
        width = prod(start.shape[1:]) if start is not None else prod(baseline.shape[1:])
        # Without linear layers between, each unit's change is added onto its rows of
        # the intact values as it is computed (fused into the product where it can).
        # (A block's parts carry the change through the linear children themselves.)
        fused = _Start(start) if start is not None and (not p.linear or p.block) else None
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


#: Elementwise modules that never decrease: they commute with a max pool exactly.
def _monotone(module: nn.Module) -> bool:
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope >= 0
    return isinstance(module, (nn.ReLU, nn.ReLU6, nn.Hardtanh))


def run_rest(modules: Sequence[nn.Module], x: torch.Tensor, wide: int = 0
             ) -> tuple[torch.Tensor, int]:
    """The modules one after the other on ``x``, and how many ran: with ``wide``,
    they stop before the first module whose input has at most ``wide`` elements per
    row (the rest may run on more rows at once). A rectifier followed by a max pool
    runs after it instead (the same values: a maximum of rectified values is the
    rectified maximum), on a quarter of the elements."""
    i = 0
    while i < len(modules):
        if wide and x[0].numel() <= wide:
            break
        module = modules[i]
        if i + 1 < len(modules) and _monotone(module):
            pooled = max_pool(modules[i + 1], x)
            if pooled is not None:
                x, i = module(pooled), i + 2
                continue
        x, i = run_module(module, x), i + 1
    return x, i


@dataclass
class _Rows:
    """Which examples each unit changes (an index tensor per unit, maybe empty)."""

    per_unit: list


def _any_per_row(mask: torch.Tensor) -> torch.Tensor:
    """``mask.flatten(1).any(1)``, as a maximum over bytes (several times faster)."""
    return mask.reshape(len(mask), -1).view(torch.uint8).amax(1) != 0


def _chain(p: Plan, x: torch.Tensor) -> torch.Tensor:
    for _, module in p.chain:
        x = run_module(module, x)
    return x


class _Start:
    """The intact values a unit's change is added onto: all rows or some of them, in
    the layout the adding product wants."""

    def __init__(self, full: torch.Tensor) -> None:
        self.full = full
        self._channel_major: Optional[torch.Tensor] = None

    def rows(self, rows: torch.Tensor) -> torch.Tensor:
        return self.full if len(rows) == len(self.full) else self.full.index_select(0, rows)

    def channel_major(self, rows: torch.Tensor) -> torch.Tensor:
        """(C, rows x positions): the rows of an (N, C, ...) tensor, channel first."""
        if self._channel_major is None:
            self._channel_major = self.full.transpose(0, 1).contiguous()
        cm = self._channel_major
        if len(rows) != len(self.full):
            cm = cm.index_select(1, rows)
        return cm.reshape(cm.shape[0], -1)


def _channel_changes(p: Plan, units, fill: np.ndarray, cached):
    """Per unit: the examples its ablation changes, and a function giving for those
    either the new output rows (EXACT), the replica rows at the chain's end (CHANNEL)
    or the mixing layer's output change (CLOSED_FORM, DELTA; added onto the intact
    values when given a :class:`_Start`)."""
    intact = _tensor(cached[p.chain_end])
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
    differs = _any_per_row((olds != news.unsqueeze(0)).reshape(len(intact) * len(units), -1))
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
            parts.append(partial(_conv_part, p.mixer, old, new, unit, rows))
        else:
            parts.append(partial(_channel_part, p, intact, old, new, rows, lo, width, axis))
    return _Rows(per_unit), parts


def _im2col(x: torch.Tensor, conv: nn.Conv2d) -> tuple[torch.Tensor, tuple[int, int]]:
    """(C x kernel positions, N x output positions): every kernel position's view of
    ``x`` (N, C, H, W) as ``conv`` sees it, copied once; and the output's (H, W)."""
    pair = nn.modules.utils._pair
    (sh, sw), (ph, pw), (dh, dw) = pair(conv.stride), pair(conv.padding), pair(conv.dilation)
    kh, kw = pair(conv.kernel_size)
    n, c = x.shape[:2]
    padded = F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
    windows = padded.unfold(2, dh * (kh - 1) + 1, sh).unfold(3, dw * (kw - 1) + 1, sw)
    windows = windows[..., ::dh, ::dw]  # n, c, ho, wo, kh, kw
    ho, wo = windows.shape[2:4]
    return windows.permute(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * ho * wo), (ho, wo)


def _conv_part(conv: nn.Conv2d, old: torch.Tensor, new: torch.Tensor, unit: int,
               rows: torch.Tensor, start: Optional[_Start] = None,
               into: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One unit's change of ``conv``'s output on ``rows`` (plus ``start``'s rows):
    its input channel's change, as the columns of the convolution (:func:`_im2col`),
    times that channel's weights; for one channel several times faster than the
    convolution kernel on CPU."""
    change = new - (old if len(rows) == len(old) else old.index_select(0, rows))
    cols, out_hw = _im2col(change, conv)
    weight = conv.weight[:, unit].reshape(conv.out_channels, -1)
    out = weight @ cols if start is None else torch.addmm(start.channel_major(rows),
                                                          weight, cols)
    # The product is channel-major: a view in (rows, channels) order.
    return out.view(conv.out_channels, len(rows), *out_hw).transpose(0, 1)


def _channel_part(p: Plan, intact, old, new, rows, lo: int, width: int, axis: int,
                  start: Optional[_Start] = None, into: Optional[torch.Tensor] = None):
    """One unit's changed rows: the new values at the chain's end (no mixing layer)
    or the change of the mixing layer's output (plus ``start``'s rows, if given)."""
    if p.mixer is None:
        part = intact.index_select(0, rows)
        part.narrow(axis, lo, width).copy_(new.expand_as(old[rows]))
        return part
    change = new - (old if len(rows) == len(old) else old.index_select(0, rows))
    return _mix(p.mixer, change, lo, width, start, rows, into)


def _mix(mixer: nn.Module, change: torch.Tensor, lo: int, width: int,
         start: Optional[_Start] = None, rows: Optional[torch.Tensor] = None,
         into: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The mixing layer's output change from ``change`` of input slice lo:lo+width,
    added onto ``start``'s ``rows`` if given (written into ``into`` if given)."""
    weight = mixer.weight[:, lo:lo + width]
    if isinstance(mixer, nn.Linear):
        # The unit's features lie on the last axis.
        if start is None:
            return change @ weight.t()
        return _add_linear(start.rows(rows), change, weight, into)
    conv = F.conv2d if isinstance(mixer, nn.Conv2d) else F.conv1d
    out = conv(change, weight, None, mixer.stride, mixer.padding, mixer.dilation)
    return out if start is None else start.rows(rows) + out


# --- blocks: a nested site, through the block's traced graph -------------------------

#: Factory functions that fx cannot trace when given traced sizes (``torch.ones(t, t)``).
_FACTORIES = ("ones", "zeros", "full", "empty", "arange", "eye", "ones_like",
              "zeros_like", "full_like", "rand", "randn", "tensor")


def _has_proxy(args, kwargs) -> Optional[fx.Proxy]:
    found = []
    fx.node.map_aggregate((args, kwargs),
                          lambda a: found.append(a) if isinstance(a, fx.Proxy) else a)
    return found[0] if found else None


@contextmanager
def _traceable_factories() -> Iterator[None]:
    """Let fx record ``torch.ones(t, t)`` and the like when ``t`` is traced: each
    factory is wrapped only while tracing; a call without traced arguments goes
    straight to the original."""
    saved = {}

    def wrap(orig):
        def wrapper(*args, **kwargs):
            proxy = _has_proxy(args, kwargs)
            if proxy is None:
                return orig(*args, **kwargs)
            return proxy.tracer.create_proxy("call_function", orig, args, kwargs)
        return wrapper

    try:
        for name in _FACTORIES:
            saved[name] = getattr(torch, name)
            setattr(torch, name, wrap(saved[name]))
        yield
    finally:
        for name, orig in saved.items():
            setattr(torch, name, orig)


class _Tracer(fx.Tracer):
    def __init__(self, site_module: nn.Module) -> None:
        super().__init__()
        self.site_module = site_module

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return m is self.site_module or super().is_leaf_module(m, qualname)


_ADD = {operator.add, torch.add, "add"}
_SUB = {operator.sub, torch.sub, "sub"}
_NEG = {operator.neg, torch.neg, "neg"}
_MUL = {operator.mul, torch.mul, "mul"}
_DIV = {operator.truediv, torch.div, "div"}
#: Shape-only operations: linear; the change goes through them as the value does.
_SHAPE_FNS = {operator.getitem, torch.flatten, torch.transpose, torch.permute,
              torch.reshape, torch.squeeze, torch.unsqueeze, torch.movedim, torch.t,
              torch.narrow, torch.select}
_SHAPE_METHODS = {"transpose", "permute", "reshape", "view", "flatten", "contiguous",
                  "unsqueeze", "squeeze", "unflatten", "movedim", "t", "narrow",
                  "select", "expand", "view_as", "reshape_as", "expand_as", "clone"}
_META_METHODS = {"size", "dim"}
_META_ATTRS = {"shape", "ndim", "dtype", "device"}


_IN_PLACE_OPERATORS = {getattr(operator, n) for n in (
    "iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "iand", "ior",
    "ixor", "ilshift", "irshift", "imatmul")}


def _in_place(node: fx.Node, root: nn.Module) -> bool:
    """A node that writes into a tensor: the traced graph would not show it."""
    if node.kwargs.get("out") is not None:
        return True
    if node.op == "call_method":
        name = str(node.target)
        return name.endswith("_") and not name.startswith("_")
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        return node.target in _IN_PLACE_OPERATORS or \
            (name.endswith("_") and not name.startswith("_"))
    if node.op == "call_module":
        return bool(getattr(root.get_submodule(node.target), "inplace", False))
    return False


def trace_block(block: nn.Module, site: str) -> Optional[_Block]:
    """``block``'s graph, if its output is linear in the output of submodule ``site``
    (and nothing writes in place); ``None`` otherwise, or if it cannot be traced."""
    try:
        site_module = block.get_submodule(site)
        with _traceable_factories():
            graph = _Tracer(site_module).trace(block)
    except Exception as exc:  # untraceable code: the replicated sweep handles it
        log.info("no traced sweep for %s: %s", site, exc)
        return None
    nodes = list(graph.nodes)
    calls = [n for n in nodes if n.op == "call_module" and n.target == site]
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(calls) != 1 or len(placeholders) != 1 or any(_in_place(n, block) for n in nodes):
        return None
    site_node = calls[0]
    dependent, meta = {site_node}, set()
    for node in nodes[nodes.index(site_node) + 1:]:
        inputs = node.all_input_nodes
        if not any(a in dependent for a in inputs):
            continue
        if node.op == "output":
            if not (len(node.args) == 1 and node.args[0] in dependent):
                return None
            continue
        if _meta(node, dependent):
            meta.add(node)
        elif _linear_rule(node, dependent, block):
            dependent.add(node)
        else:
            return None
    if not any(n.op == "output" and n.args[0] in dependent for n in nodes):
        return None
    # The independent values the linear steps read (sizes, multipliers), with what
    # they are computed from.
    needed: set = set()
    stack = [a for n in dependent | meta if n is not site_node
             for a in n.all_input_nodes if a not in dependent and a not in meta]
    while stack:
        node = stack.pop()
        if node in needed or node in dependent:
            continue
        needed.add(node)
        stack.extend(a for a in node.all_input_nodes if a not in meta)
    order = [n for n in nodes if n in needed]
    return _Block(graph, block, site_node, dependent, meta, order)


def _meta(node: fx.Node, dependent: set) -> bool:
    """A node that reads only the shape (dtype, device) of a changing value."""
    first = node.args[0] if node.args else None
    if first not in dependent or any(a in dependent for a in node.all_input_nodes
                                     if a is not first):
        return False
    if node.op == "call_method":
        return node.target in _META_METHODS
    return node.op == "call_function" and node.target is getattr \
        and len(node.args) == 2 and node.args[1] in _META_ATTRS


def _linear_rule(node: fx.Node, dependent: set, root: nn.Module) -> bool:
    """Whether ``node``'s output is linear in its changing input(s)."""
    deps = [a for a in _flat_args(node) if isinstance(a, fx.Node) and a in dependent]
    if node.op == "call_module":
        module = root.get_submodule(node.target)
        return len(node.args) >= 1 and node.args[0] in dependent and len(deps) == 1 \
            and not node.kwargs and _is_linear_module(module)
    target = node.target
    if node.op not in ("call_function", "call_method"):
        return False
    if target in _ADD or target in _SUB:
        return "alpha" not in node.kwargs and len(node.args) == 2
    first_dep = bool(node.args) and node.args[0] in dependent
    if target in _NEG:
        return len(node.args) == 1
    if target in _MUL:
        return len(node.args) == 2 and len(deps) == 1 and not node.kwargs
    if target in _DIV:
        return len(node.args) == 2 and len(deps) == 1 and first_dep and not node.kwargs
    if node.op == "call_function" and target in _SHAPE_FNS:
        return first_dep and len(deps) == 1
    if node.op == "call_method" and target in _SHAPE_METHODS:
        return first_dep and len(deps) == 1
    return False


def _flat_args(node: fx.Node) -> list:
    out: list = []
    fx.node.map_aggregate((node.args, node.kwargs), lambda a: out.append(a) or a)
    return out


def _fetch_attr(root: nn.Module, target: str) -> Any:
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _block_changes(p: Plan, units, fill: np.ndarray, cached, inputs: np.ndarray):
    """Per unit: the examples its ablation changes and the change of the block's
    output on them, through the block's linear graph."""
    intact = _tensor(cached[p.site])
    x = _tensor(np.asarray(inputs))
    fills = torch.from_numpy(np.ascontiguousarray(fill))
    per_unit, parts = [], []
    for i, unit in enumerate(units):
        old = intact.narrow(p.axis, unit, 1)
        new = fills[i:i + 1].narrow(p.axis, unit, 1)
        rows = torch.nonzero(_any_per_row(old != new)).flatten()
        per_unit.append(rows)
        if not len(rows):
            continue
        parts.append(partial(_block_part, p, x, old, new, rows, unit, intact.shape[1:]))
    return _Rows(per_unit), parts


def _block_part(p: Plan, x, old, new, rows, unit: int, shape,
                start: Optional[_Start] = None, into: Optional[torch.Tensor] = None
                ) -> torch.Tensor:
    """One unit's change of the output of the block's linear children that follow
    (plus ``start``'s rows, if given; written into ``into`` if given)."""
    every = len(rows) == len(x)
    start_at = [0] * (len(shape) + 1)
    start_at[p.axis] = unit
    change = _Boxed(new - (old if every else old.index_select(0, rows)), tuple(start_at),
                    (len(rows), *shape))
    out = _propagate(p.block, x if every else x.index_select(0, rows), change)
    for _, module in p.linear:
        out = lazy_linear_change(module, out)
    if start is None:
        return _now(out)
    if isinstance(out, _Lazy):
        return _add_linear(start.rows(rows), out.x, out.weight, into)
    return start.rows(rows).add(_now(out)) if into is None else \
        torch.add(start.rows(rows), _now(out), out=into)


def _add_linear(base: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                into: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``base + F.linear(x, weight)`` in one product (into ``into`` if given)."""
    k, o = x.shape[-1], weight.shape[0]
    x2, b2 = x.reshape(-1, k), base.reshape(-1, o)
    if into is not None:
        torch.addmm(b2, x2, weight.t(), out=into.view(-1, o))
        return into
    return torch.addmm(b2, x2, weight.t()).view(*x.shape[:-1], o)


def _propagate(block: _Block, x: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """The change of ``block``'s output for rows ``x`` of its input when its site's
    output changes by ``change``."""
    values: dict = {}
    deltas: dict = {block.site_node: change}
    wanted = set(block.needed)

    def value(a):
        return fx.node.map_arg(a, lambda n: values[n] if n in values else
                               _now(deltas[n]) if n in deltas else _missing(n))

    for node in block.graph.nodes:
        if node.op == "output":
            return deltas[node.args[0]]
        if node in wanted:
            values[node] = _evaluate(node, block.root, x, value)
        elif node in block.meta:
            values[node] = _evaluate(node, block.root, x, value)
        elif node in block.dependent and node is not block.site_node:
            deltas[node] = _delta(node, block.root, value, deltas, values)
    raise RuntimeError("the traced block has no output")


def _missing(node):
    raise RuntimeError(f"no value for {node} in the traced sweep")


def _evaluate(node: fx.Node, root: nn.Module, x: torch.Tensor, value: Callable):
    if node.op == "placeholder":
        return x
    if node.op == "get_attr":
        return _fetch_attr(root, node.target)
    args, kwargs = value(node.args), value(node.kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    if node.op == "call_module":
        return root.get_submodule(node.target)(*args, **kwargs)
    raise RuntimeError(f"cannot evaluate {node.op} in a traced sweep")


def _delta(node: fx.Node, root: nn.Module, value: Callable, deltas: dict, values: dict):
    """The change of a linear node's output from the changes of its inputs (a
    :class:`_Lazy` where it is a linear map of an earlier change)."""
    target = node.target
    if node.op == "call_module":
        return lazy_linear_change(root.get_submodule(target), deltas[node.args[0]])
    a, b = (node.args + (None, None))[:2]
    if target in _ADD or target in _SUB:
        sign = -1 if target in _SUB else 1
        shape = torch.broadcast_shapes(*(_shape(v, deltas, values) for v in (a, b)))
        changing = [(operand, s) for operand, s in ((a, 1), (b, sign))
                    if isinstance(operand, fx.Node) and operand in deltas]
        if len(changing) == 1 and isinstance(deltas[changing[0][0]], (_Lazy, _Boxed)) \
                and tuple(deltas[changing[0][0]].shape) == tuple(shape):
            # A residual add: the change passes through, still unevaluated.
            lazy = deltas[changing[0][0]]
            return lazy if changing[0][1] == 1 else lazy.scaled(-1.0)
        total = None
        for operand, s in changing:
            part = _now(deltas[operand]) if s == 1 else -_now(deltas[operand])
            total = part if total is None else total + part
        return total.expand(shape) if tuple(total.shape) != tuple(shape) else total
    if target in _NEG:
        return deltas[a].scaled(-1.0) if isinstance(deltas[a], (_Lazy, _Boxed)) \
            else -deltas[a]
    if isinstance(a, fx.Node) and isinstance(deltas.get(a), _Boxed):
        moved = _move_box(node, deltas[a], value)
        if moved is not None:
            return moved
    if target in _MUL:
        if isinstance(a, fx.Node) and a in deltas:
            return _now(deltas[a]) * value(b)
        return value(a) * _now(deltas[b])
    if target in _DIV:
        return _now(deltas[a]) / value(b)
    args, kwargs = value(node.args), value(node.kwargs)
    if node.op == "call_function":
        return target(*args, **kwargs)
    return getattr(args[0], target)(*args[1:], **kwargs)


def _shape(v, deltas: dict, values: dict) -> tuple:
    if isinstance(v, fx.Node):
        v = deltas[v] if v in deltas else values[v]
    return tuple(v.shape) if isinstance(v, (torch.Tensor, _Lazy, _Boxed)) else ()


def _move_box(node: fx.Node, box: "_Boxed", value: Callable) -> Optional["_Boxed"]:
    """``box`` through a transpose, permute, reshape, view, flatten or contiguous;
    ``None`` for anything else (the change is then written out in full)."""
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    rest, ndim = value(node.args[1:]), len(box.shape)
    if node.kwargs:
        return None
    if name == "contiguous":
        return box
    if name in ("transpose", "swapaxes") and len(rest) == 2:
        dims = list(range(ndim))
        d0, d1 = rest[0] % ndim, rest[1] % ndim
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return box.permuted(dims)
    one = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
    if name == "permute":
        return box.permuted(list(one))
    if name in ("reshape", "view") and all(isinstance(d, int) for d in one):
        return box.reshaped(list(one))
    if name == "flatten" and len(rest) <= 2:
        lo = rest[0] % ndim if rest else 0
        hi = rest[1] % ndim if len(rest) > 1 else ndim - 1
        return box.reshaped([*box.shape[:lo], prod(box.shape[lo:hi + 1]), *box.shape[hi + 1:]])
    return None


@dataclass
class _Lazy:
    """``F.linear(x, weight)``, not computed yet: linear maps that follow compose into
    one weight (an out-projection and an unembedding become one small matrix)."""

    x: torch.Tensor
    weight: torch.Tensor

    @property
    def shape(self) -> tuple:
        return (*self.x.shape[:-1], self.weight.shape[0])

    def scaled(self, factor: float) -> "_Lazy":
        return _Lazy(self.x, self.weight * factor)

    def then(self, weight: torch.Tensor) -> "_Lazy":
        """Followed by ``F.linear(., weight)``."""
        return _Lazy(self.x, weight @ self.weight)

    def value(self) -> torch.Tensor:
        return F.linear(self.x, self.weight)


@dataclass
class _Boxed:
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

    def scaled(self, factor: float) -> "_Boxed":
        return _Boxed(self.sub * factor, self.start, self.shape)

    def permuted(self, dims: Sequence[int]) -> "_Boxed":
        dims = [d % len(self.shape) for d in dims]
        return _Boxed(self.sub.permute(*dims), tuple(self.start[d] for d in dims),
                      tuple(self.shape[d] for d in dims))

    def reshaped(self, shape: Sequence[int]) -> Optional["_Boxed"]:
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
        return _Boxed(self.sub.reshape(size), tuple(start), tuple(shape))


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


def _now(v):
    """A change as a tensor."""
    return v.value() if isinstance(v, (_Lazy, _Boxed)) else v


def lazy_linear_change(module: nn.Module, delta) -> Any:
    """:func:`linear_change`, kept unevaluated through a Linear."""
    if isinstance(module, nn.Linear):
        if isinstance(delta, _Boxed):
            # A box whole but in its last dimension: that slice of the weights.
            whole = all(a == 0 and n == d for a, n, d in
                        zip(delta.start[:-1], delta.sub.shape[:-1], delta.shape[:-1]))
            if whole:
                lo = delta.start[-1]
                return _Lazy(delta.sub, module.weight[:, lo:lo + delta.sub.shape[-1]])
            delta = delta.value()
        if isinstance(delta, _Lazy):
            o1, k = delta.weight.shape
            if module.out_features * k <= o1 * (k + module.out_features):
                return delta.then(module.weight)
            delta = delta.value()
        return _Lazy(delta, module.weight)
    return linear_change(module, _now(delta))
