"""The one object the GUI talks to.

Methods are plain blocking calls returning immutable values; the caller decides which
thread runs them (the GUI's single worker thread). Ablations are passed in as data on
every call rather than held as hidden state, so a result always says exactly what
produced it and a superseded request can never leak its state into the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.ablation import Ablation
from core.analysis.cache import ActivationCache
from core.analysis.attention import HeadScores, head_scores
from core.datasets import Dataset, load_digits, load_induction, load_sentences
from core.errors import AblationError, InputError, MechscopeError
from core.analysis.evaluate import EvalResult, Evaluator, Sweep
from core.files.images import ConvertedImage, load_image
from core.jobs import CancelToken, report
from core.zoo.loading import open_zoo, zoo_entry
from core.model import HookReport, LayerInfo, ModelAdapter
from core.session_files import UserFilesMixin
from core.session_lessons import LessonsMixin
from core.zoo import ZOO, ZooEntry

CACHE_BYTES = 256 * 1024 * 1024
DATASETS = {"digits": lambda: load_digits("eval"), "induction": load_induction,
            "sentences": load_sentences}
EXAMPLE_TEXTS = 200


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
    #: (N, h, w) 0..1 pictures of the evaluation examples, for the thumbnail strip
    #: (``None`` for token models).
    examples: Optional[np.ndarray]
    #: (N,) int64 true labels of image examples; (N, T) targets for token models.
    example_labels: np.ndarray
    #: "image" or "tokens": which input loader and prediction view fit.
    kind: str = "image"
    #: The first evaluation sequences as text, for token models.
    example_texts: tuple[str, ...] = ()

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
    """Class probabilities (K,) for one input — or (T, K) next-token probabilities per
    position, or the (D,) embedding of an embedding model — with and without the
    ablations."""

    probs: np.ndarray
    baseline_probs: np.ndarray
    class_names: tuple[str, ...]

    @property
    def predicted(self):
        """The argmax class: an int, or (T,) int64 per position."""
        top = np.argmax(self.probs, axis=-1)
        return int(top) if top.ndim == 0 else top


@dataclass(frozen=True)
class Capture:
    """Activations of one input at the requested sites, under the ablations.

    ``activations``: ``site -> (*output_shape) float32``, read-only copies.
    """

    activations: dict
    prediction: Prediction
    ablations: tuple[Ablation, ...]
    report: HookReport


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, dtype=np.float32, copy=True)
    out.setflags(write=False)
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class Session(UserFilesMixin, LessonsMixin):
    """Current model + evaluation dataset, and the caches that make toggles fast."""

    def __init__(self, cache_bytes: int = CACHE_BYTES) -> None:
        self._cache = ActivationCache(cache_bytes)
        self.adapter: Optional[ModelAdapter] = None
        self.dataset: Optional[Dataset] = None
        self.info: Optional[ModelInfo] = None
        self._evaluator: Optional[Evaluator] = None
        self._head_scores: Optional[HeadScores] = None

    @staticmethod
    def available_models() -> tuple[ZooEntry, ...]:
        return tuple(ZOO.values())

    def open_model(self, name: str, token: Optional[CancelToken] = None) -> ModelInfo:
        """Open a built-in model and its evaluation dataset; the previous model stays
        open if this fails (:class:`ModelLoadError`)."""
        entry = zoo_entry(name)
        adapter = open_zoo(name, token)
        report(token, 0.95, f"loading the {entry.dataset} dataset…")
        return self._install(adapter, DATASETS[entry.dataset](), entry.title,
                             entry.default_layer, token)

    def _install(self, adapter: ModelAdapter, dataset: Dataset, title: str,
                 default_layer: str, token: Optional[CancelToken] = None) -> ModelInfo:
        if adapter is not self.adapter:
            self._spec = None  # a spec belongs to the model it was given for
        layers = adapter.layers()
        self._cache.clear()
        self.adapter, self.dataset = adapter, dataset
        self._evaluator = Evaluator(adapter, dataset, self._cache)
        self._head_scores = None
        self.info = ModelInfo(adapter.name, title, layers, dataset.class_names,
                              dataset.name, len(dataset), default_layer,
                              adapter.input_shape, sum(i.n_params for i in layers),
                              dataset.display, dataset.labels, dataset.kind,
                              self._texts(dataset))
        return self.info

    @staticmethod
    def _texts(dataset: Dataset) -> tuple[str, ...]:
        return dataset.texts[:EXAMPLE_TEXTS]

    def _require(self) -> tuple[ModelAdapter, Dataset, Evaluator]:
        if self.adapter is None or self.dataset is None or self._evaluator is None:
            raise MechscopeError("No model is open yet.")
        return self.adapter, self.dataset, self._evaluator

    def sample(self, index: int, token: Optional[CancelToken] = None) -> Sample:
        """Dataset example ``index`` (:class:`InputError` if out of range)."""
        _, dataset, _ = self._require()
        if not 0 <= index < len(dataset):
            raise InputError(f"Example {index} does not exist; the dataset has "
                             f"{len(dataset)} examples (0–{len(dataset) - 1}).")
        if dataset.kind == "tokens":
            length = int((dataset.inputs[index] != dataset.pad_id).sum())
            return Sample(index, None, None, dataset.inputs[index][:length],
                          dataset.labels[index][:length])
        if dataset.kind == "embedding":
            length = int((dataset.inputs[index] != dataset.pad_id).sum())
            return Sample(index, None, None, dataset.inputs[index][:length])
        return Sample(index, int(dataset.labels[index]), dataset.display[index],
                      dataset.inputs[index])

    def encode_text(self, text: str, token: Optional[CancelToken] = None) -> np.ndarray:
        """Typed text -> token ids (T,) int64 for the open token model (InputError)."""
        entry = zoo_entry(self.info.name) if self.info is not None else None
        if entry is None or entry.encoder is None:
            raise InputError("The open model does not read text.")
        try:
            ids = np.asarray(entry.encoder(text), dtype=np.int64)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        ids.setflags(write=False)
        return ids

    def load_image(self, path: str | Path,
                   token: Optional[CancelToken] = None) -> ConvertedImage:
        """Convert an image file into the current model's input (:class:`InputError`)."""
        from core.files.probe import probe_image

        adapter, _, _ = self._require()
        probe_image(path)  # decode once in a sandbox process before decoding here
        converted = load_image(path)
        converted = self._respecified(converted)
        if converted.model_input.shape != adapter.input_shape:
            raise InputError(f"The converted image has shape {converted.model_input.shape}, "
                             f"but {adapter.name} expects {adapter.input_shape}.")
        return converted

    def _check_ablations(self, ablations: Sequence[Ablation]) -> None:
        layers = {info.name: info for info in self._require()[0].layers()}
        for abl in ablations:
            info = layers.get(abl.site)
            if info is None:
                raise AblationError(f"The model has no layer named {abl.site!r}.")
            if abl.whole_layer:
                continue
            bad = [u for u in abl.units if not 0 <= u < info.n_units]
            if bad:
                raise AblationError(f"{abl.site} has {info.n_units} {info.unit_name}s "
                                    f"(0–{info.n_units - 1}); {bad} do not exist.")

    def capture(self, model_input: np.ndarray, sites: Sequence[str],
                ablations: Sequence[Ablation] = (),
                token: Optional[CancelToken] = None) -> Capture:
        """Activations of one input (C, H, W) at ``sites`` plus its prediction."""
        adapter, _, evaluator = self._require()
        if isinstance(sites, str):  # one site given bare: not a sequence of letters
            sites = (sites,)
        ablations = tuple(ablations)
        self._check_ablations(ablations)
        x = self._checked_input(adapter, model_input)
        means = evaluator.means(sorted({a.site for a in ablations if a.mode == "mean"}),
                                token)
        result = adapter.run(x[None], capture=tuple(sites), ablations=ablations, means=means,
                             token=token)
        base = adapter.run(x[None]).outputs if ablations else result.outputs
        names = self.info.class_names if self.info else ()
        # Embedding models put out a vector, not class scores: keep it as it is.
        squash = (lambda v: v) if self.info.kind == "embedding" else _softmax
        prediction = Prediction(_frozen(squash(result.outputs[0])),
                                _frozen(squash(base[0])), names)
        acts = {site: _frozen(arr[0]) for site, arr in result.activations.items()}
        return Capture(acts, prediction, ablations, result.report)

    def _checked_input(self, adapter: ModelAdapter, model_input: np.ndarray) -> np.ndarray:
        if self.info is not None and self.info.kind != "image":
            x = np.asarray(model_input, dtype=np.int64)
            vocab = len(self.info.class_names)
            if x.ndim != 1 or not 1 <= len(x) <= adapter.input_shape[0]:
                raise InputError(f"A sequence of 1 to {adapter.input_shape[0]} tokens is "
                                 f"needed; got shape {x.shape}.")
            if x.min() < 0 or x.max() >= vocab:
                raise InputError(f"Token ids must lie in 0..{vocab - 1}.")
            return x
        x = np.asarray(model_input, dtype=np.float32)
        if x.shape != adapter.input_shape:
            raise InputError(f"The input has shape {x.shape}; {adapter.name} expects "
                             f"{adapter.input_shape}.")
        return x

    def head_scores(self, token: Optional[CancelToken] = None) -> HeadScores:
        """Previous-token, induction and first-token scores of every head, over the
        evaluation set (cached per model)."""
        adapter, dataset, evaluator = self._require()
        if self._head_scores is None:
            sites = tuple(dict.fromkeys(i.pattern_site for i in adapter.layers()
                                        if i.pattern_site))
            patterns = {s: evaluator.site_output(s, token) for s in sites}
            valid = np.ones(dataset.inputs.shape[:2], bool)
            if dataset.pad_id is not None:
                valid = dataset.inputs != dataset.pad_id
            self._head_scores = head_scores(patterns, dataset.inputs, valid)
        return self._head_scores

    def head_importance(self, mode: str = "zero",
                        token: Optional[CancelToken] = None) -> tuple[Sweep, ...]:
        """Each head of every attention layer ablated alone (batched per layer)."""
        adapter, _, evaluator = self._require()
        sites = tuple(dict.fromkeys(i.heads_site for i in adapter.layers() if i.heads_site))
        layers = {i.name: i for i in adapter.layers()}
        return tuple(evaluator.sweep(site, range(layers[site].n_units), mode, token)
                     for site in sites)

    def evaluate(self, ablations: Sequence[Ablation] = (),
                 token: Optional[CancelToken] = None) -> EvalResult:
        """Accuracy over the evaluation split with and without ``ablations``."""
        _, _, evaluator = self._require()
        self._check_ablations(ablations)
        return evaluator.evaluate(tuple(ablations), token)
