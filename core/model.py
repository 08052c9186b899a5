"""Values that describe a model and a run, and the protocol every framework adapter
implements. No framework imports here: arrays are numpy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from core.ablation import Ablation
from core.jobs import CancelToken
from core.kinds import LayerView


@dataclass(frozen=True)
class LayerInfo:
    """One capture site of a model.

    Attributes
    ----------
    name : str
        Stable site name (module path, e.g. ``"conv2"`` or ``"blocks.1.attn"``).
    kind : str
        Layer type as the framework names it (``"Conv2d"``, ``"Linear"``, ...).
    output_shape : tuple of int
        Shape of one example's output, without the batch axis.
    unit_axis : int
        Axis of ``output_shape`` (batch excluded) that indexes units: 0 for channels of
        a ``(C, H, W)`` map, heads of a ``(heads, query, key)`` pattern and neurons of a
        ``(F,)`` vector; 1 for the features of a ``(tokens, F)`` sequence.
    n_params : int
        Parameters owned by this module (not its children).
    parent : str
        Name of the enclosing site, ``""`` for top-level layers.
    hint : str
        ``"attention"`` when the model marks the module as attention; else ``""``.
    pattern_site : str
        For attention: the site whose output is the ``(heads, query, key)`` pattern.
    heads_site : str
        For attention: the site whose units are heads, where heads are switched off.
    """

    name: str
    kind: str
    output_shape: tuple[int, ...]
    unit_axis: int
    n_params: int
    parent: str = ""
    hint: str = ""
    pattern_site: str = ""
    heads_site: str = ""

    @property
    def n_units(self) -> int:
        return self.output_shape[self.unit_axis] if self.output_shape else 0

    @property
    def view(self) -> LayerView:
        """Which view draws this site: attention, channels (C, H, W), sequence
        (tokens, F) or neurons (F,)."""
        if self.hint == "attention":
            return LayerView.ATTENTION
        return {3: LayerView.CHANNELS, 2: LayerView.SEQUENCE}.get(
            len(self.output_shape), LayerView.NEURONS)

    @property
    def unit_name(self) -> str:
        return self.view.unit_name


@dataclass(frozen=True)
class HookReport:
    """What the hooks of one run did: the self-check that catches a missed hook.

    ``unchanged`` lists ablations whose target values were already equal to their
    replacement on every input (e.g. a ReLU channel that never fires), so the user can
    be told why the ablation had no effect.
    """

    fired: Mapping[str, bool] = field(default_factory=dict)
    unchanged: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunResult:
    """Outputs of one run.

    Attributes
    ----------
    outputs : (N, K) float32 ndarray or None
        Model outputs (logits); ``None`` when the run stopped early.
    activations : dict of str to ndarray
        ``site -> (N, *output_shape) float32``, only for the sites asked for.
    report : HookReport
    """

    outputs: Optional[np.ndarray]
    activations: Mapping[str, np.ndarray]
    report: HookReport


@runtime_checkable
class ModelAdapter(Protocol):
    """What the session needs from a framework (torch today, ONNX later)."""

    name: str
    input_shape: tuple[int, ...]

    def layers(self) -> tuple[LayerInfo, ...]:
        """Every capture site, in forward order."""
        ...

    def run(
        self,
        inputs: np.ndarray,
        capture: Sequence[str] = (),
        ablations: Sequence[Ablation] = (),
        means: Optional[Mapping[str, np.ndarray]] = None,
        stop_after: Optional[str] = None,
        token: Optional[CancelToken] = None,
    ) -> RunResult:
        """Forward ``inputs`` (N, *input_shape) float32 with capture and ablations."""
        ...

    def resume_point(self, site: str, inclusive: bool = True) -> Optional[str]:
        """The latest site whose cached output lets a run skip everything before an
        ablation at ``site`` (sequential models), or ``None``. ``inclusive=False`` when
        the layer itself must run again (its weights or its input are needed)."""
        ...

    def run_from(
        self,
        site: str,
        activation: np.ndarray,
        ablations: Sequence[Ablation] = (),
        means: Optional[Mapping[str, np.ndarray]] = None,
    ) -> RunResult:
        """Treat ``activation`` as the unablated output of ``site``; apply the
        ablations at and after it and return the outputs (N, K) float32."""
        ...

    def run_sweep(
        self,
        site: str,
        units: Sequence[int],
        mode: str,
        means: Optional[Mapping[str, np.ndarray]],
        inputs: np.ndarray,
        resume: Optional[str] = None,
    ) -> np.ndarray:
        """Outputs with each of ``units`` of ``site`` ablated alone (``mode`` "zero" or
        "mean"; ``means`` as in :meth:`run`).

        ``inputs`` are the model inputs (N, *input_shape), or, when ``resume`` (a
        :meth:`resume_point` of ``site``) is given, that site's unablated output
        (N, *shape). Returns (U, N, K) float32: row ``i`` has ``units[i]`` ablated,
        equal to ``run(inputs, ablations=(Ablation(site, (units[i],), mode),))``.
        """
        ...


def missing_methods(obj: object) -> list[str]:
    """Names of :class:`ModelAdapter` members that ``obj`` lacks (for clear errors)."""
    wanted = ("name", "input_shape", "layers", "run", "resume_point", "run_from",
              "run_sweep")
    return [m for m in wanted if not hasattr(obj, m)]
