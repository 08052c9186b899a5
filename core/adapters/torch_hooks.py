"""Forward hooks for exactly one run: capture, ablate, stop early, self-check.

Every handle is collected and removed in ``finally``, even when the forward pass
raises, so thousands of runs leave no hook behind.
"""

from __future__ import annotations

from contextlib import contextmanager
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


def apply_ablations(out: torch.Tensor, ablations: Sequence[Ablation], means: Mapping,
                    state: "RunHooks", axis: int = 1) -> torch.Tensor:
    """Apply ``ablations`` (all on one site) to ``out``, recording whether each changed
    anything (the self-check behind "unit 3 was already zero on these inputs")."""
    new = out
    for abl in ablations:
        replaced = replace_units(abl, new, means, axis)
        idx = torch.tensor(abl.units, dtype=torch.long)
        label = abl.label()
        differs = not torch.equal(replaced.index_select(axis, idx), new.index_select(axis, idx))
        state.changed[label] = state.changed.get(label, False) or differs
        new = replaced
    return new


def _make_hook(site: str, state: RunHooks, capture: bool, ablations: Sequence[Ablation],
               means: Mapping, stop: bool, axis: int):
    def hook(_module: nn.Module, _inputs, out: torch.Tensor):
        state.fired[site] = True
        new = apply_ablations(out, ablations, means, state, axis)
        if capture:
            # Clone only when the model has in-place ops that could overwrite the
            # tensor later; otherwise the output is fresh memory nobody writes to.
            state.captured[site] = new.clone() if state.clone and new is out else new
        if stop:
            raise _StopForward
        return new if ablations else None

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
    state = state or RunHooks(clone)
    handles = []
    try:
        for site in sites:
            state.fired[site] = False
            hook = _make_hook(site, state, site in capture, by_site.get(site, ()),
                              means or {}, site == stop_after, (axes or {}).get(site, 1))
            handles.append(modules[site].register_forward_hook(hook))
        yield state
    finally:
        for handle in handles:
            handle.remove()


def forward(model: nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """Run the model; ``None`` when a hook stopped the pass early."""
    try:
        return model(x)
    except _StopForward:
        return None
