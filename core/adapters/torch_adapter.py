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
from core.adapters import torch_hooks, torch_shapes, torch_sweep
from core.jobs import CancelToken, check
from core.model import HookReport, LayerInfo, RunResult

log = logging.getLogger(__name__)


def _tensor(arr: np.ndarray, dtype=np.float32) -> torch.Tensor:
    """Share memory with ``arr`` when torch may; copy read-only arrays, which the core
    hands out to protect its caches and which torch refuses to wrap silently."""
    arr = np.ascontiguousarray(arr, dtype=dtype)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


def _unit_axis(shape: tuple[int, ...]) -> int:
    """Features of a (tokens, F) sequence; the leading axis otherwise (see LayerInfo)."""
    return 1 if len(shape) == 2 else 0


class TorchAdapter:
    """Wraps an ``nn.Module`` in eval mode.

    Parameters
    ----------
    model : nn.Module
    name : str
        Name shown to the user.
    input_shape : tuple of int
        One example's input shape, e.g. ``(1, 16, 16)``, or ``(T,)`` for token ids
        (the longest sequence; shorter ones run too).
    input_dtype : numpy dtype
        ``float32`` for images, ``int64`` for token ids.
    """

    def __init__(self, model: nn.Module, name: str, input_shape: tuple[int, ...],
                 input_dtype=np.float32) -> None:
        self.model = model.eval()
        self.name = name
        self.input_shape = tuple(input_shape)
        self.input_dtype = np.dtype(input_dtype)
        self._clone = any(getattr(m, "inplace", False) for m in model.modules())
        self._layers = self._describe()
        self._axes = {info.name: info.unit_axis + 1 for info in self._layers}
        # Top-level children of a Sequential can be resumed from: the rest of the
        # forward pass is exactly the children that follow.
        self._resumable = (
            [n for n, _ in model.named_children()] if isinstance(model, nn.Sequential) else []
        )
        self._plans: dict[str, Optional[torch_sweep.Plan]] = {}
        #: How the last :meth:`run_sweep` computed its outputs: one of the path names
        #: of :mod:`core.adapters.torch_sweep` ("closed form", "delta", "channel",
        #: "exact") or "replicas" for the replicated forward pass.
        self.last_sweep_path: Optional[str] = None

    def layers(self) -> tuple[LayerInfo, ...]:
        return self._layers

    def _describe(self) -> tuple[LayerInfo, ...]:
        """Every module's output shape from a shape-only pass (see
        :mod:`core.adapters.torch_shapes`), and the parameters each owns."""
        shapes = torch_shapes.output_shapes(self.model, self.input_shape, self.input_dtype)
        named = [(n, m) for n, m in self.model.named_modules() if n]
        modules, seen = dict(named), set()
        # Every module counts its parameters, in order, so a tensor tied to an earlier
        # module's (SmolLM's unembedding shares the embedding) is counted only there.
        owned = {name: _count_new(module, seen) for name, module in named}
        return tuple(self._info(name, modules, shapes[name], owned[name])
                     for name, _ in named if name in shapes)

    @staticmethod
    def _info(name: str, modules: dict, shape: tuple[int, ...], n_params: int) -> LayerInfo:
        module = modules[name]
        parent = name.rpartition(".")[0]
        hint = getattr(module, "mechscope_view", "")
        pattern = heads = ""
        if hint == "attention":
            # The attention module names its pattern and heads children; those
            # children point at the same pair, so any of them opens the same view.
            owner = name if hasattr(module, "mechscope_pattern") else parent
            attn = modules.get(owner)
            pattern = f"{owner}.{getattr(attn, 'mechscope_pattern', '')}"
            heads = f"{owner}.{getattr(attn, 'mechscope_heads', '')}"
        return LayerInfo(name, type(module).__name__, shape, _unit_axis(shape), n_params,
                         parent, hint, pattern, heads)

    def run(self, inputs: np.ndarray, capture: Sequence[str] = (),
            ablations: Sequence[Ablation] = (), means: Optional[Mapping] = None,
            stop_after: Optional[str] = None,
            token: Optional[CancelToken] = None) -> RunResult:
        check(token)
        x = _tensor(inputs, self.input_dtype)
        with torch.inference_mode(), torch_hooks.installed(
            self.model, capture, ablations, means, stop_after, self._clone, axes=self._axes
        ) as state:
            out = torch_hooks.forward(self.model, x)
        acts = {site: t.numpy() for site, t in state.captured.items()}
        report = HookReport(dict(state.fired), state.unchanged())
        if out is not None:  # a stopped run skips later hooks on purpose
            _check_fired(state)
        return RunResult(None if out is None else out.numpy(), acts, report)

    def resume_point(self, site: str, inclusive: bool = True) -> Optional[str]:
        if not self._resumable:
            return None
        top = site.split(".")[0]
        if top not in self._resumable:
            return None
        if top == site and inclusive:
            return site
        # A nested site: restart from the output of the child before its ancestor.
        i = self._resumable.index(top)
        return self._resumable[i - 1] if i > 0 else None

    def run_from(self, site: str, activation: np.ndarray,
                 ablations: Sequence[Ablation] = (),
                 means: Optional[Mapping] = None) -> RunResult:
        here = [a for a in ablations if a.site == site]
        later = [a for a in ablations if a.site != site]
        state = torch_hooks.RunHooks(clone=False)
        with torch.inference_mode():
            x = _tensor(activation)
            x = torch_hooks.apply_ablations(x, here, means or {}, state,
                                            self._axes.get(site, 1))
            with torch_hooks.installed(self.model, (), later, means, None, False, state,
                                       axes=self._axes):
                x = self._suffix(site, x)
        _check_fired(state)
        return RunResult(x.numpy(), {}, HookReport(dict(state.fired), state.unchanged()))

    def sweep_plan(self, site: str) -> Optional[torch_sweep.Plan]:
        """The shortcut a sweep of ``site`` takes (see :mod:`core.adapters.torch_sweep`),
        or ``None`` when it replicates the forward pass; planned once per site."""
        if site not in self._plans:
            shapes = {info.name: info.output_shape for info in self._layers}
            try:
                self._plans[site] = torch_sweep.plan(self.model, site, shapes, self._axes)
            except Exception:  # a model the planner does not understand: replicate
                log.exception("no sweep shortcut for %s", site)
                self._plans[site] = None
        return self._plans[site]

    def sweep_needs(self, site: str, mode: str) -> Optional[tuple[str, ...]]:
        """The sites whose cached intact outputs :meth:`run_sweep` takes as ``cached``
        to sweep ``site`` without replicating the forward pass; ``None`` if it cannot."""
        plan = self.sweep_plan(site)
        return None if plan is None else plan.needs

    def run_sweep(self, site: str, units: Sequence[int], mode: str,
                  means: Optional[Mapping], inputs: np.ndarray,
                  resume: Optional[str] = None,
                  cached: Optional[Mapping[str, np.ndarray]] = None) -> np.ndarray:
        """Ablate each of ``units`` of ``site`` alone, all in one batched pass.

        ``inputs`` are the model inputs (N, *input_shape), or the cached output of
        ``resume`` when given. Returns the outputs stacked per unit: (U, N, ...) float32.
        ``cached``: the intact outputs of :meth:`sweep_needs`; with them, the sweep
        computes only what each unit changes (:mod:`core.adapters.torch_sweep`).
        """
        plan = self.sweep_plan(site) if cached is not None else None
        if plan is not None:
            self.last_sweep_path = plan.path
            return torch_sweep.run(plan, units, mode, means, cached, inputs)
        self.last_sweep_path = torch_sweep.REPLICAS
        return self._replicated_sweep(site, units, mode, means, inputs, resume)

    def _replicated_sweep(self, site: str, units: Sequence[int], mode: str,
                          means: Optional[Mapping], inputs: np.ndarray,
                          resume: Optional[str]) -> np.ndarray:
        """The eval set once per unit, through the rest of the model batched."""
        units = tuple(units)
        n_u, n = len(units), len(inputs)
        spec = torch_hooks.SweepSpec(site, units, mode, means or {},
                                     self._axes.get(site, 1) - 1)
        x = _tensor(inputs, np.float32 if resume else self.input_dtype)
        x = x.repeat(n_u, *([1] * (x.dim() - 1)))
        with torch.inference_mode():
            if resume == site:
                # The cached output of the site itself: ablate it here, for its module
                # does not run again and a hook on it would never fire.
                x = self._suffix(site, torch_hooks.sweep_apply(spec, x))
            else:
                with torch_hooks.installed(self.model, (), (), None, None, False,
                                           axes=self._axes, sweep=spec) as state:
                    x = self._suffix(resume, x) if resume else self.model(x)
                _check_fired(state)
        return x.numpy().reshape(n_u, n, *x.shape[1:])

    def _suffix(self, site: str, x: torch.Tensor) -> torch.Tensor:
        """The rest of a sequential forward pass, from the output of child ``site``."""
        if site not in self._resumable:
            raise ValueError(f"Cannot resume the forward pass from {site!r}.")
        children = dict(self.model.named_children())
        for name in self._resumable[self._resumable.index(site) + 1:]:
            x = children[name](x)
        return x

    # --- one unit: its weights, its weights to the classes, what excites it ---------
    # (issue #13; the work is in core.adapters.torch_units)
    def _unit_flow(self):
        """Who feeds whom, traced once with a dummy forward pass."""
        from core.adapters import torch_units

        flow = getattr(self, "_flow", None)
        if flow is None:
            flow = self._flow = torch_units.trace(self.model, self.input_shape,
                                                  self.input_dtype)
        return flow

    def unit_weights(self, site: str, unit: int, labels: Sequence[str] = ()):
        """Unit ``unit`` of ``site``'s own weights as pictures
        (:class:`core.unit_values.UnitWeights`), or ``None`` where it has none that
        draw. ``labels``: token names for an attention head's circuits."""
        from core.adapters import torch_units

        return torch_units.unit_weights(self.model, self._unit_flow(), site, int(unit),
                                        labels)

    def output_weights(self, site: str, unit: int) -> Optional[np.ndarray]:
        """(K,) float32 weights from neuron ``unit`` of ``site`` to each output class,
        where one linear layer (through elementwise layers) makes the output; else
        ``None``."""
        from core.adapters import torch_units

        return torch_units.output_weights(self.model, self._unit_flow(), site, int(unit))

    def visualise(self, site: str, unit: int, steps: int = 256, seed: int = 0,
                  value_range: Optional[tuple[float, float]] = None,
                  token: Optional[CancelToken] = None,
                  scale: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
        """An input optimised to raise unit ``unit`` of ``site`` (its mean over
        positions), kept in ``value_range``, the objective divided by ``scale``:
        (input, objective per step); the last step's objective is that of the
        returned input."""
        from core.adapters import torch_units
        from core.errors import InputError

        if site not in self._axes:
            raise InputError(f"The model has no layer named {site!r}.")
        return torch_units.visualise(self.model, self.input_shape, self.input_dtype, site,
                                     int(unit), self._axes[site], steps, seed, value_range,
                                     token, scale)


def _count_new(module: nn.Module, seen: set) -> int:
    """Parameters of ``module`` itself whose memory no earlier module counted: tied
    weights are separate ``Parameter`` objects after ``load_state_dict(assign=True)``
    but share one storage."""
    total = 0
    for p in module.parameters(recurse=False):
        key = (id(p),) if p.device.type == "meta" else (
            p.untyped_storage().data_ptr(), p.storage_offset(), tuple(p.shape))
        if key not in seen:
            seen.add(key)
            total += p.numel()
    return total


def _check_fired(state: torch_hooks.RunHooks) -> None:
    never = torch_hooks.never_fired(state)
    if never:
        # A planned hook that never fired means the numbers would silently lie.
        log.error("hooks on %s never fired during the forward pass", never)
        raise RuntimeError(f"Hooks on {never} never fired during the forward pass.")
