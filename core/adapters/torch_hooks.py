"""Forward hooks for exactly one run: capture, ablate, stop early, self-check.

Every handle is collected and removed in ``finally``, even when the forward pass
raises, so thousands of runs leave no hook behind.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from core.ablation import Ablation, Mode, sweep_masks, unit_mask
from core.errors import AblationError


class _StopForward(Exception):
    """Raised by the hook on the ``stop_after`` site; caught by :func:`forward`."""


class RunHooks:
    """State shared by the hooks of one run."""

    def __init__(self, clone: bool) -> None:
        self.clone = clone
        self.captured: dict[str, torch.Tensor] = {}
        self.fired: dict[str, bool] = {}
        # Per ablation label: did it change any value in any batch of the run?
        self.changed: dict[str, bool] = {}

    def unchanged(self) -> tuple[str, ...]:
        return tuple(label for label, changed in self.changed.items() if not changed)


@dataclass(frozen=True)
class SweepSpec:
    """Each of ``units`` of ``site`` ablated alone: the batch holds one replica of the
    examples per unit, replica ``i`` ablating ``units[i]``.

    ``unit_axis`` is the unit axis of one example's output (batch axis excluded).
    """

    site: str
    units: tuple[int, ...]
    mode: Mode
    means: Mapping
    unit_axis: int


def _torch(arr: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(arr).to(like.dtype)


def sweep_apply(spec: SweepSpec, out: torch.Tensor) -> torch.Tensor:
    """``out`` (U * N, *shape) with replica ``i`` (rows ``i*N`` to ``(i+1)*N``) ablated
    at ``spec.units[i]``; a new tensor, never in place."""
    shape = tuple(out.shape[1:])
    keep, fill = sweep_masks(spec.site, spec.units, spec.mode, shape, spec.unit_axis,
                             spec.means)
    rows = out.reshape(len(spec.units), -1, *shape)
    new = rows * _torch(keep, out).unsqueeze(1) + _torch(fill, out).unsqueeze(1)
    return new.reshape(out.shape)


def _skip(abl: Ablation, out: torch.Tensor, inputs: Optional[tuple]) -> torch.Tensor:
    """The layer's input in place of its output: only where the shapes match."""
    x = inputs[0] if inputs else None
    if not isinstance(x, torch.Tensor) or x.shape != out.shape:
        shape = "unknown" if not isinstance(x, torch.Tensor) else tuple(x.shape[1:])
        raise AblationError(f"{abl.site} cannot be skipped: its input {shape} and output "
                            f"{tuple(out.shape[1:])} differ in shape. Switch it off instead.")
    return x


def apply_ablations(out: torch.Tensor, ablations: Sequence[Ablation], means: Mapping,
                    state: "RunHooks", axis: int = 1,
                    inputs: Optional[tuple] = None) -> torch.Tensor:
    """Apply ``ablations`` (all on one site) to ``out`` (B, *shape), recording whether
    each changed anything (the self-check behind "unit 3 was already zero on these
    inputs"). A skip comes first, so units switched off on the same site stay off;
    ``scale`` acts on the weights before the forward pass (see :func:`installed`)."""
    new = out
    for abl in ablations:
        if abl.mode == "skip":
            new = _skip(abl, out, inputs)
            _record(state, abl, not torch.equal(new, out))
            break
    units = [a for a in ablations if not a.whole_layer]
    if not units:
        return new
    keep, fill = unit_mask(units, units[0].site, new.shape[1:], axis - 1, means)
    replaced = new * _torch(keep, new) + _torch(fill, new)
    for abl in units:
        idx = torch.tensor(abl.units, dtype=torch.long)
        _record(state, abl, not torch.equal(replaced.index_select(axis, idx),
                                            new.index_select(axis, idx)))
    return replaced


def _record(state: "RunHooks", abl: Ablation, differs: bool) -> None:
    label = abl.label()
    state.changed[label] = state.changed.get(label, False) or differs


@contextmanager
def scaled_weights(model: nn.Module, ablations: Sequence[Ablation]) -> Iterator[None]:
    """Multiply the ``weight`` of each ``scale`` ablation's module for one run; the
    original values are copied back in ``finally``."""
    saved = []
    try:
        for abl in ablations:
            if abl.mode != "scale":
                continue
            weight = getattr(model.get_submodule(abl.site), "weight", None)
            if not isinstance(weight, torch.Tensor):
                raise AblationError(f"{abl.site} has no weights to scale.")
            saved.append((weight, weight.detach().clone()))
            with torch.no_grad():
                weight.mul_(abl.value)
        yield
    finally:
        with torch.no_grad():
            for weight, original in saved:
                weight.copy_(original)


def _make_hook(site: str, state: RunHooks, capture: bool, ablations: Sequence[Ablation],
               means: Mapping, stop: bool, axis: int):
    def hook(_module: nn.Module, inputs, out: torch.Tensor):
        state.fired[site] = True
        new = apply_ablations(out, ablations, means, state, axis, inputs)
        if capture:
            # Clone only when the model has in-place ops that could overwrite the
            # tensor later; otherwise the output is fresh memory nobody writes to.
            state.captured[site] = new.clone() if state.clone and new is out else new
        if stop:
            raise _StopForward
        return new if new is not out else None

    return hook


def _make_sweep_hook(spec: SweepSpec, state: RunHooks):
    def hook(_module: nn.Module, _inputs, out: torch.Tensor) -> torch.Tensor:
        state.fired[spec.site] = True
        return sweep_apply(spec, out)

    return hook


def never_fired(state: RunHooks) -> list[str]:
    """Sites whose hook did not run: the numbers of such a run would silently lie."""
    return sorted(site for site, fired in state.fired.items() if not fired)


@contextmanager
def installed(model: nn.Module, capture: Sequence[str], ablations: Sequence[Ablation],
              means: Optional[Mapping], stop_after: Optional[str],
              clone: bool, state: Optional[RunHooks] = None,
              axes: Optional[Mapping[str, int]] = None,
              sweep: Optional[SweepSpec] = None) -> Iterator[RunHooks]:
    """Install hooks on exactly the sites that need one; remove all of them on exit.

    ``axes``: site -> unit axis of the batched output (default 1). ``sweep``: a batched
    sweep whose hook is installed, fire-checked and removed like every other.
    """
    modules = dict(model.named_modules())
    by_site: dict[str, list[Ablation]] = {}
    for abl in ablations:
        by_site.setdefault(abl.site, []).append(abl)
    sites = set(capture) | set(by_site) | ({stop_after} if stop_after else set())
    wanted = sites | ({sweep.site} if sweep else set())
    unknown = sorted(s for s in wanted if s not in modules or s == "")
    if unknown:
        raise AblationError(f"The model has no layer named {', '.join(unknown)}.")
    stack = ExitStack()
    state = state or RunHooks(clone)
    handles = []
    try:
        stack.enter_context(scaled_weights(model, ablations))
        for site in sites:
            state.fired[site] = False
            hook = _make_hook(site, state, site in capture, by_site.get(site, ()),
                              means or {}, site == stop_after, (axes or {}).get(site, 1))
            handles.append(modules[site].register_forward_hook(hook))
        if sweep is not None:
            state.fired[sweep.site] = False
            handles.append(modules[sweep.site].register_forward_hook(
                _make_sweep_hook(sweep, state)))
        yield state
    finally:
        for handle in handles:
            handle.remove()
        stack.close()


def forward(model: nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """Run the model; ``None`` when a hook stopped the pass early."""
    try:
        return model(x)
    except _StopForward:
        return None
