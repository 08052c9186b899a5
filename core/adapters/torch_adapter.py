"""The torch implementation of :class:`core.model.ModelAdapter`.

Captures with forward hooks on the selected modules only, applies ablations as masks,
and resumes a sequential model from any top-level layer so an ablation toggle re-runs
only what lies downstream of it.
"""

from __future__ import annotations

import logging
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from core.ablation import Ablation
from core.adapters import torch_hooks
from core.jobs import CancelToken, check
from core.model import HookReport, LayerInfo, RunResult

log = logging.getLogger(__name__)


def _tensor(arr: np.ndarray) -> torch.Tensor:
    """Share memory with ``arr`` when torch may; copy read-only arrays, which the core
    hands out to protect its caches and which torch refuses to wrap silently."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


class TorchAdapter:
    """Wraps an ``nn.Module`` in eval mode.

    Parameters
    ----------
    model : nn.Module
    name : str
        Name shown to the user.
    input_shape : tuple of int
        One example's input shape, e.g. ``(1, 16, 16)``.
    """

    def __init__(self, model: nn.Module, name: str, input_shape: tuple[int, ...]) -> None:
        self.model = model.eval()
        self.name = name
        self.input_shape = tuple(input_shape)
        self._clone = any(getattr(m, "inplace", False) for m in model.modules())
        self._layers = self._describe()
        self._order = [info.name for info in self._layers]
        # Top-level children of a Sequential can be resumed from: the rest of the
        # forward pass is exactly the children that follow.
        self._resumable = (
            [n for n, _ in model.named_children()] if isinstance(model, nn.Sequential) else []
        )

    def layers(self) -> tuple[LayerInfo, ...]:
        return self._layers

    def _describe(self) -> tuple[LayerInfo, ...]:
        """Find every module's output shape with one hooked dummy forward."""
        shapes: dict[str, tuple[int, ...]] = {}
        handles = []
        named = [(n, m) for n, m in self.model.named_modules() if n]
        try:
            for name, module in named:
                def hook(_m, _i, out, name=name):
                    if isinstance(out, torch.Tensor):
                        shapes[name] = tuple(out.shape[1:])
                handles.append(module.register_forward_hook(hook))
            with torch.inference_mode():
                self.model(torch.zeros((1, *self.input_shape)))
        finally:
            for h in handles:
                h.remove()
        infos = []
        for name, module in named:
            if name not in shapes:
                continue
            n_params = sum(p.numel() for p in module.parameters(recurse=False))
            infos.append(LayerInfo(name, type(module).__name__, shapes[name], 0,
                                   n_params, name.rpartition(".")[0]))
        return tuple(infos)

    def run(self, inputs: np.ndarray, capture: Sequence[str] = (),
            ablations: Sequence[Ablation] = (), means: Optional[Mapping] = None,
            stop_after: Optional[str] = None,
            token: Optional[CancelToken] = None) -> RunResult:
        check(token)
        x = _tensor(inputs)
        with torch.inference_mode(), torch_hooks.installed(
            self.model, capture, ablations, means, stop_after, self._clone
        ) as state:
            out = torch_hooks.forward(self.model, x)
        acts = {site: t.numpy() for site, t in state.captured.items()}
        report = HookReport(dict(state.fired), state.unchanged())
        never = [site for site, fired in state.fired.items() if not fired]
        if never and out is not None:
            # A planned hook that never fired means the numbers would silently lie.
            raise RuntimeError(f"Hooks on {never} never fired during the forward pass.")
        return RunResult(None if out is None else out.numpy(), acts, report)

    def can_resume_from(self, site: str) -> bool:
        return site in self._resumable

    def run_from(self, site: str, activation: np.ndarray,
                 ablations: Sequence[Ablation] = (),
                 means: Optional[Mapping] = None) -> RunResult:
        if not self.can_resume_from(site):
            raise ValueError(f"Cannot resume the forward pass from {site!r}.")
        children = dict(self.model.named_children())
        suffix = self._resumable[self._resumable.index(site) + 1:]
        here = [a for a in ablations if a.site == site]
        later = [a for a in ablations if a.site != site]
        state = torch_hooks.RunHooks(clone=False)
        with torch.inference_mode():
            x = _tensor(activation)
            x = torch_hooks.apply_ablations(x, here, means or {}, state)
            with torch_hooks.installed(self.model, (), later, means, None, False, state):
                for name in suffix:
                    x = children[name](x)
        return RunResult(x.numpy(), {}, HookReport(dict(state.fired), state.unchanged()))
