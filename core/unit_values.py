"""The values behind "what does this unit do?" (issue #13): a unit's page, its weights,
its feature visualisation, per-layer probes and a 2-D map of a layer.

Frozen dataclasses with numpy arrays only, so they cross the process boundary and the
window can draw them without knowing any framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class ExampleStrip:
    """The evaluation examples on which one unit is most (or least) active.

    ``indices`` (k,) int64 into the evaluation set; ``values`` (k,) float32 the unit's
    peak activation on each (its maximum over positions); ``positions`` (k,) int64
    where that peak is (flat index into the map; 0 for a neuron); ``labels`` and
    ``predicted`` (k,) int64: true and predicted class (for token models: the target
    and the prediction at the peak position; -1 where none).

    ``pictures`` (k, h, w) 0..1 the inputs as shown (images; ``None`` for tokens);
    ``maps`` the unit's activation on each: (k, H, W) for channels, (k, T) per token
    for sequences and heads, ``None`` for a neuron; ``tokens`` the examples' tokens as
    text (token models; padding dropped).
    """

    indices: np.ndarray
    values: np.ndarray
    positions: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    pictures: Optional[np.ndarray] = None
    maps: Optional[np.ndarray] = None
    tokens: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class UnitEffect:
    """What a unit does to the output.

    ``kind``: "direct weights" — the weight from the unit to each class, where the
    next layer is the output layer — or "accuracy change": the per-group accuracy
    change (points) when the unit is switched off (zero). ``values`` (G,) float64,
    ``names`` (G,) the classes or groups; ``caption`` a sentence for the window.
    """

    kind: str
    values: np.ndarray
    names: tuple[str, ...]
    caption: str


@dataclass(frozen=True)
class UnitWeights:
    """A unit's own weights, drawable as images.

    ``kind``: "kernels" (a conv channel's kernel per input channel), "incoming" (a
    dense neuron's incoming weights laid out as its input is: an image, or one tile
    per input channel) or "circuits" (an attention head's token-to-token QK and OV
    scores). ``images``: one 2-D float32 array per tile; ``titles`` one per tile;
    ``row_labels``/``col_labels`` axis labels for token-by-token tiles.
    """

    kind: str
    images: tuple[np.ndarray, ...]
    titles: tuple[str, ...]
    caption: str
    row_labels: tuple[str, ...] = ()
    col_labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnitPage:
    """Everything the unit page shows about unit ``unit`` of ``site``.

    ``histogram`` (B,) int64 counts of the unit's peak activation over the evaluation
    set, between ``edges`` (B+1,); ``group_means`` (G,) float64 its mean peak per class
    (or group), NaN for an empty group. ``weights`` is ``None`` where the layer has no
    weights that draw as pictures (``weights_note`` says why).
    """

    site: str
    unit: int
    n_units: int
    unit_name: str
    statistic: str
    top: ExampleStrip
    bottom: ExampleStrip
    histogram: np.ndarray
    edges: np.ndarray
    group_means: np.ndarray
    group_names: tuple[str, ...]
    group_label: str
    effect: Optional[UnitEffect]
    weights: Optional[UnitWeights]
    weights_note: str = ""
    #: The unit never fires after its rectifier on this dataset.
    dead: bool = False
    #: Dataset-wide mean and maximum of the peak activation.
    mean: float = 0.0
    maximum: float = 0.0


@dataclass(frozen=True)
class FeatureVis:
    """An input made by optimisation to excite one unit ("what does it look for?").

    ``model_input`` the optimised input (model's shape), ``picture`` (h, w) 0..1 as
    shown; ``activation`` the unit's mean over positions on it; ``dataset_max`` the
    same statistic's maximum over the evaluation set; ``trace`` (steps,) the objective
    during optimisation; ``exceeded`` whether it beat every evaluation example.
    """

    site: str
    unit: int
    model_input: np.ndarray
    picture: np.ndarray
    activation: float
    dataset_max: float
    trace: np.ndarray
    steps: int
    regularisers: str

    @property
    def exceeded(self) -> bool:
        return self.activation > self.dataset_max


@dataclass(frozen=True)
class ProbeReport:
    """Linear probes, one per layer, for one question (``task``).

    ``held_out``/``train``/``shuffled`` (L,) float64: held-out accuracy, training
    accuracy and held-out accuracy of the same probe trained on shuffled labels (the
    honesty check: it should stay near ``chance``). ``dims`` (L,) feature count per
    layer; ``n_train``/``n_test`` rows used (examples, or positions for sequences).
    """

    task: str
    sites: tuple[str, ...]
    held_out: np.ndarray
    train: np.ndarray
    shuffled: np.ndarray
    dims: np.ndarray
    chance: float
    n_train: int
    n_test: int
    classes: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class LayerMap:
    """A 2-D projection of a layer's activations over the evaluation set.

    ``coords`` (M, 2) float32, one point per example (per scored position for token
    models: ``positions``); ``labels`` (M,) the class or group used for colour (-1:
    none), ``predicted`` (M,) the model's answer; ``indices`` (M,) the example each
    point is; ``explained`` (2,) fraction of variance each axis explains.
    """

    site: str
    method: str
    coords: np.ndarray
    indices: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    explained: np.ndarray
    label_names: tuple[str, ...]
    positions: Optional[np.ndarray] = None
