"""The one typed API the window talks to, and the values it returns.

:class:`core.session.Session` implements it in-process (tests, notebooks, ``--in-process``)
and :class:`core.remote.RemoteSession` implements it by forwarding each call to the
compute process (what users run). Both are checked against :class:`SessionAPI` by a
test that compares method names and signatures, so adding a call means: the protocol
method here, its body in ``session.py``, its one-line forward in ``remote.py``.

Every method is a plain blocking call that takes ``token`` (a
:class:`core.jobs.CancelToken`, checked between batches, which also carries progress)
and returns frozen values with read-only numpy arrays; the caller picks the thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, Sequence, Union, runtime_checkable

import numpy as np

from core.ablation import Ablation
from core.analysis.attention import HeadScores
from core.analysis.evaluate import EvalResult, Sweep
from core.files.images import ConvertedImage
from core.jobs import CancelToken
from core.kinds import ModelKind
from core.lessons.snapshot import Snapshot
from core.lm_values import LmTask, LogitLens, PatchGrid
from core.model import HookReport, LayerInfo
from core.unit_values import FeatureVis, LayerMap, ProbeReport, UnitPage
from core.zoo import ZooEntry


@dataclass(frozen=True)
class ModelInfo:
    """What the window needs to know about an opened model."""

    name: str
    title: str
    layers: tuple[LayerInfo, ...]
    class_names: tuple[str, ...]
    dataset_name: str
    dataset_size: int
    default_layer: str
    input_shape: tuple[int, ...]
    n_params: int
    #: (N, h, w) 0..1 pictures of the first evaluation examples, for the thumbnail
    #: strip (at most ``EXAMPLES_SHOWN``; ``None`` for token models): the window never
    #: holds a whole dataset.
    examples: Optional[np.ndarray]
    #: True labels of the shown image examples; targets for token models.
    example_labels: np.ndarray
    #: Decides the input loader, the prediction view and the wording.
    kind: ModelKind = ModelKind.IMAGE
    #: The first evaluation sequences as text, for token models.
    example_texts: tuple[str, ...] = ()
    #: Where the evaluation data came from: "built-in" or the user's file.
    dataset_source: str = "built-in"
    #: How the model runs, one sentence for the status line (e.g. that an ablation
    #: reruns the whole forward pass of a model that is no ``nn.Sequential``).
    note: str = ""

    def layer(self, name: str) -> Optional[LayerInfo]:
        """The layer called ``name``, or ``None``."""
        return next((info for info in self.layers if info.name == name), None)


@dataclass(frozen=True)
class Sample:
    """One dataset example: ``model_input`` (C, H, W) image or (T,) token ids,
    ``display`` (h, w) 0..1 for images; ``label`` the class, or ``targets`` (T,) the
    next token per position (-1: not scored) for token models."""

    index: int
    label: Optional[int]
    display: Optional[np.ndarray]
    model_input: np.ndarray
    targets: Optional[np.ndarray] = None


@dataclass(frozen=True)
class Prediction:
    """What a classifier makes of one input, with and without the ablations:
    ``probabilities`` (K,) — or (T, K) next-token probabilities per position."""

    probabilities: np.ndarray
    baseline_probabilities: np.ndarray
    class_names: tuple[str, ...]

    @property
    def predicted(self):
        """The argmax class: an int, or (T,) int64 per position."""
        top = np.argmax(self.probabilities, axis=-1)
        return int(top) if top.ndim == 0 else top


@dataclass(frozen=True)
class Embedding:
    """What an embedding model makes of one input: the (D,) vector, ablated and intact."""

    embedding: np.ndarray
    baseline_embedding: np.ndarray


@dataclass(frozen=True)
class Capture:
    """Activations of one input at the requested sites, under the ablations.

    ``activations``: ``site -> (*output_shape) float32``, read-only copies.
    ``dead``: ``site -> units`` that never fire (after the site's rectifier) on any
    evaluation example; sites without a rectifier are absent.
    """

    activations: dict
    prediction: Union[Prediction, Embedding]
    ablations: tuple[Ablation, ...]
    report: HookReport
    dead: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OpenedFile:
    """What :meth:`SessionAPI.open_file` made of a path: a model or your data (both
    reopen the workbench: ``info``), or an image to feed (``image``)."""

    path: str
    what: str  # "model", "data" or "image"
    info: Optional[ModelInfo] = None
    image: Optional[ConvertedImage] = None


@runtime_checkable
class SessionAPI(Protocol):
    """Everything the window may ask of the core. See the module docstring."""

    def available_models(self) -> tuple[ZooEntry, ...]:
        """The built-in models, for the Model box (no framework needed)."""
        ...

    def open_model(self, name: str, token: Optional[CancelToken] = None) -> ModelInfo:
        """Open a built-in model and its evaluation dataset (``ModelLoadError``)."""
        ...

    def open_file(self, path: str, token: Optional[CancelToken] = None) -> OpenedFile:
        """Open whatever ``path`` is — a model file, your data, an image — as File ›
        Open, a drop, the recent list and the command line all do."""
        ...

    def open_checkpoint(self, path: str, trusted_sha256: Optional[str] = None,
                        spec: Optional[object] = None, data: Optional[str] = None,
                        token: Optional[CancelToken] = None) -> ModelInfo:
        """Open a model file, evaluated on the user's ``data`` file if given
        (``NeedsTrust``, ``NeedsInputSpec``, ``NeedsData``, ``ModelLoadError``)."""
        ...

    def use_dataset(self, path: str, token: Optional[CancelToken] = None) -> ModelInfo:
        """Evaluate the open model on the user's labelled data from now on."""
        ...

    def sample(self, index: int, token: Optional[CancelToken] = None) -> Sample:
        """Evaluation example ``index`` (``InputError`` if out of range)."""
        ...

    def load_image(self, path: str, token: Optional[CancelToken] = None) -> ConvertedImage:
        """An image file converted to the open model's input (``InputError``)."""
        ...

    def convert_drawing(self, gray: np.ndarray,
                        token: Optional[CancelToken] = None) -> ConvertedImage:
        """A drawing (h, w) 0..1 converted like an image file."""
        ...

    def encode_text(self, text: str, token: Optional[CancelToken] = None) -> np.ndarray:
        """Typed text -> (T,) int64 token ids for the open token model."""
        ...

    def capture(self, model_input: np.ndarray, sites: Sequence[str],
                ablations: Sequence[Ablation] = (),
                token: Optional[CancelToken] = None) -> Capture:
        """Activations of one input at ``sites`` and its prediction."""
        ...

    def evaluate(self, ablations: Sequence[Ablation] = (),
                 token: Optional[CancelToken] = None) -> EvalResult:
        """The score over the evaluation set with and without ``ablations``."""
        ...

    def head_scores(self, token: Optional[CancelToken] = None) -> HeadScores:
        """Previous-token, induction and first-token scores of every head."""
        ...

    def head_importance(self, mode: str = "zero",
                        token: Optional[CancelToken] = None) -> tuple[Sweep, ...]:
        """Each head of every attention layer ablated alone."""
        ...

    def unit_page(self, site: str, unit: int, k: int = 16,
                  token: Optional[CancelToken] = None) -> UnitPage:
        """What ``unit`` of ``site`` responds to across the evaluation set: its top-k and
        bottom-k examples, histogram, mean per class, effect on the output, weights."""
        ...

    def unit_importance(self, site: str, mode: str = "zero",
                        token: Optional[CancelToken] = None) -> Sweep:
        """Every unit of ``site`` (channels, neurons, heads) switched off alone."""
        ...

    def probes(self, token: Optional[CancelToken] = None) -> tuple[ProbeReport, ...]:
        """A linear probe per layer, trained and scored on held-out evaluation data."""
        ...

    def layer_map(self, site: str, token: Optional[CancelToken] = None) -> LayerMap:
        """A 2-D projection (PCA) of ``site``'s activations over the evaluation set."""
        ...

    def feature_visualisation(self, site: str, unit: int, steps: int = 256,
                              token: Optional[CancelToken] = None) -> FeatureVis:
        """An input optimised to excite ``unit`` of ``site`` (image models)."""
        ...

    def logit_lens(self, model_input: np.ndarray, target: Optional[int] = None,
                   ablations: Sequence[Ablation] = (),
                   token: Optional[CancelToken] = None) -> LogitLens:
        """The residual stream of every layer and sub-step read through the final norm
        and unembedding, per position of one prompt (language models)."""
        ...

    def activation_patching(self, clean: np.ndarray, corrupt: np.ndarray,
                            clean_answer: int, corrupt_answer: int, kind: str = "resid",
                            rows: Optional[Sequence[int]] = None,
                            token: Optional[CancelToken] = None) -> PatchGrid:
        """Patch clean activations into the corrupted run, one cell at a time, for the
        given ``rows`` of the grid (all when ``None``)."""
        ...

    def patch_cell(self, clean: np.ndarray, corrupt: np.ndarray, kind: str, row: int,
                   column: int, token: Optional[CancelToken] = None) -> Prediction:
        """The corrupted run's prediction with one cell patched from the clean run
        (``baseline_probabilities``: the corrupted run unpatched)."""
        ...

    def lm_tasks(self, token: Optional[CancelToken] = None) -> tuple[LmTask, ...]:
        """The evaluation tasks of the open language model (empty for other models)."""
        ...

    def use_task(self, name: str, token: Optional[CancelToken] = None) -> ModelInfo:
        """Evaluate the open language model on task ``name`` from now on."""
        ...

    def lesson_start(self, trainer: str, seed: int = 0, lr: Optional[float] = None,
                     token: Optional[CancelToken] = None) -> Snapshot:
        """Start (or restart) a lesson's training; its first snapshot."""
        ...

    def lesson_step(self, n: int = 1, lr: Optional[float] = None, sample: int = 0,
                    token: Optional[CancelToken] = None) -> Snapshot:
        """``n`` gradient steps of the running lesson."""
        ...

    def open_lesson_model(self, token: Optional[CancelToken] = None) -> ModelInfo:
        """Open the lesson-3 network, as trained so far, in the workbench."""
        ...


def api_methods() -> tuple[str, ...]:
    """The names of every :class:`SessionAPI` method, in declaration order."""
    return tuple(name for name, value in vars(SessionAPI).items()
                 if callable(value) and not name.startswith("_"))
