"""Forward hooks for exactly one run: capture, ablate, stop early, self-check.

Every handle is collected and removed in ``finally``, even when the forward pass
raises, so thousands of runs leave no hook behind.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Iterator, Mapping, Optional, Sequence

import torch
from torch import nn

from core.ablation import Ablation
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


def fit_mean(mean, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """A dataset mean (computed at full length) cropped to ``shape`` (one example's
    output, e.g. a shorter sequence's), with a leading batch axis."""
    mean = torch.as_tensor(mean, dtype=dtype)
    return mean[tuple(slice(0, n) for n in shape)].unsqueeze(0)


def replace_units(abl: Ablation, out: torch.Tensor, means: Mapping, axis: int = 1) -> torch.Tensor:
    """A new tensor with the ablated units (along ``axis``) replaced; never in place."""
    n_units = out.shape[axis]
    if abl.units and max(abl.units) >= n_units:
        raise AblationError(
            f"{abl.site} has {n_units} units; unit {max(abl.units)} does not exist."
        )
    keep = torch.ones(n_units, dtype=out.dtype)
    keep[list(abl.units)] = 0
    keep = keep.view(*([1] * axis), -1, *([1] * (out.dim() - axis - 1)))
    if abl.mode == "zero":
        return out * keep
    mean = means.get(abl.site)
    if mean is None:
        raise AblationError(f"No dataset mean is known for {abl.site}; cannot mean-ablate.")
    return out * keep + fit_mean(mean, out.shape[1:], out.dtype) * (1 - keep)


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
    """Apply ``ablations`` (all on one site) to ``out``, recording whether each changed
    anything (the self-check behind "unit 3 was already zero on these inputs").
    ``scale`` acts on the weights before the forward pass (see :func:`installed`)."""
    new = out
    for abl in ablations:
        if abl.mode == "scale":
            continue
        if abl.mode == "skip":
            replaced = _skip(abl, new, inputs)
            differs = not torch.equal(replaced, new)
        else:
            replaced = replace_units(abl, new, means, axis)
            idx = torch.tensor(abl.units, dtype=torch.long)
            differs = not torch.equal(replaced.index_select(axis, idx),
                                      new.index_select(axis, idx))
        label = abl.label()
        state.changed[label] = state.changed.get(label, False) or differs
        new = replaced
    return new


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


@contextmanager
def installed(model: nn.Module, capture: Sequence[str], ablations: Sequence[Ablation],
              means: Optional[Mapping], stop_after: Optional[str],
              clone: bool, state: Optional[RunHooks] = None,
              axes: Optional[Mapping[str, int]] = None) -> Iterator[RunHooks]:
    """``axes``: site -> unit axis of the batched output (default 1)."""
    """Install hooks on exactly the sites that need one; remove all of them on exit."""
    modules = dict(model.named_modules())
    by_site: dict[str, list[Ablation]] = {}
    for abl in ablations:
        by_site.setdefault(abl.site, []).append(abl)
    sites = set(capture) | set(by_site) | ({stop_after} if stop_after else set())
    unknown = sorted(s for s in sites if s not in modules or s == "")
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
