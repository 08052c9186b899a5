"""The session: the one object that holds the open model, its evaluation data and the
caches that make toggles fast. It implements :class:`core.api.SessionAPI` in-process;
the window reaches it through :class:`core.remote.RemoteSession` in the compute process.

Methods are plain blocking calls returning immutable values; the caller decides which
thread runs them. Ablations are passed in as data on every call rather than held as
hidden state, so a result always says exactly what produced it and a superseded request
can never leak its state into the next one. Opening a file is done by
:mod:`core.files.opening`, which returns what to install; lesson training by
:class:`core.lessons.runner.LessonRunner`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.ablation import Ablation
from core.analysis.attention import HeadScores, head_scores
from core.analysis.cache import ActivationCache
from core.analysis.evaluate import EvalResult, Evaluator, Sweep
from core.analysis.units import UnitActivity, activation_after, unit_activity
from core.api import (Capture, Embedding, ModelInfo, OpenedFile, Prediction, Sample,
                      SessionAPI)
from core.datasets import Dataset, load_dataset
from core.errors import AblationError, InputError, MechscopeError
from core.files import opening
from core.files.images import ConvertedImage, load_image
from core.files.row_pictures import RowPictures
from core.jobs import CancelToken, report
from core.kinds import ModelKind
from core.lessons.runner import LessonRunner
from core.lessons.snapshot import Snapshot
from core.lm_values import LmTask, LogitLens, PatchGrid
from core.model import ModelAdapter
from core.unit_study import UnitStudy
from core.unit_values import FeatureVis, LayerMap, ProbeReport, UnitPage
from core.zoo import ZOO, ZooEntry
from core.zoo.loading import open_zoo, zoo_entry

__all__ = ["Capture", "ModelInfo", "Prediction", "Sample", "Session"]
CACHE_BYTES = 256 * 1024 * 1024
EXAMPLE_TEXTS = 200
#: Thumbnails sent to the window: it shows a strip, never holds a whole dataset.
EXAMPLES_SHOWN = 400


def _frozen(arr: np.ndarray) -> np.ndarray:
    out = np.array(arr, dtype=np.float32, copy=True)
    out.setflags(write=False)
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class Session(SessionAPI):
    """Current model + evaluation dataset, and the caches that make toggles fast."""

    def __init__(self, cache_bytes: int = CACHE_BYTES) -> None:
        self._cache = ActivationCache(cache_bytes)
        self.adapter: Optional[ModelAdapter] = None
        self.dataset: Optional[Dataset] = None
        self.info: Optional[ModelInfo] = None
        self._evaluator: Optional[Evaluator] = None
        self._head_scores: Optional[HeadScores] = None
        self._activity: dict[str, Optional[UnitActivity]] = {}
        #: How images are converted for a model of another input size (per model).
        self._spec: Optional[object] = None
        self._lessons = LessonRunner()
        self._units: Optional[UnitStudy] = None
        #: Bar pictures of a tabular model's rows (ModelKind.VALUES), else None.
        self._rows: Optional[RowPictures] = None
        #: Live modules of the calling process (:meth:`add_live`), by Model-box name.
        self._live: dict[str, tuple[ZooEntry, opening.Opened]] = {}

    def available_models(self) -> tuple[ZooEntry, ...]:
        return tuple(ZOO.values()) + tuple(entry for entry, _ in self._live.values())

    def add_live(self, entry: ZooEntry, opened: opening.Opened) -> None:
        """List a live model of the calling process (``mechscope.show``) in the Model
        box; :meth:`open_model` of ``entry.name`` installs ``opened`` again.

        Not part of :class:`SessionAPI`: a live ``nn.Module`` cannot be pickled to the
        compute process, so only an in-process session can hold one.
        """
        self._live[entry.name] = (entry, opened)

    # --- opening -------------------------------------------------------------------
    def open_model(self, name: str, token: Optional[CancelToken] = None) -> ModelInfo:
        """Open a built-in model (or a live one, :meth:`add_live`) and its evaluation
        dataset; the previous model stays open if this fails (:class:`ModelLoadError`)."""
        if name in self._live:
            from core.live import SOURCE

            return self._install(self._live[name][1], token, source=SOURCE)
        entry = zoo_entry(name)
        adapter = open_zoo(name, token)
        report(token, 0.95, f"loading the {entry.dataset} dataset…")
        return self._install(opening.Opened(adapter, load_dataset(entry.dataset),
                                            entry.title, entry.default_layer))

    def open_file(self, path: str, token: Optional[CancelToken] = None) -> OpenedFile:
        """Open a model file, your data or an image, by what ``path`` holds."""
        what = opening.classify(path)
        if what == "image":
            return OpenedFile(str(path), what, image=self.load_image(path, token))
        if what == "data":
            return OpenedFile(str(path), what, info=self.use_dataset(path, token))
        return OpenedFile(str(path), what, info=self.open_checkpoint(path, token=token))

    def open_checkpoint(self, path: str, trusted_sha256: Optional[str] = None,
                        spec: Optional[object] = None, data: Optional[str] = None,
                        token: Optional[CancelToken] = None) -> ModelInfo:
        """Open a user's model file (state_dict .pt/.pth, safetensors; a pickled
        module or TorchScript only with ``trusted_sha256``, on its own architecture;
        ONNX; Keras) on the architecture or dataset it fits, or on ``data`` (the
        user's inputs and labels) when given.

        Raises :class:`core.files.checkpoints.NeedsTrust`, ``NeedsInputSpec``,
        ``NeedsData`` or :class:`ModelLoadError`; the model open before stays open
        either way.
        """
        opened = opening.open_model_file(path, trusted_sha256, spec, token, data=data)
        return self._install(opened, token,
                             source=Path(data).name if data is not None else "built-in")

    def use_dataset(self, path: str, token: Optional[CancelToken] = None) -> ModelInfo:
        """Evaluate the open model on the user's own labelled data (a folder with one
        sub-folder per class, .npz, .npy or .csv); the previous data stays if this
        fails or is cancelled."""
        adapter, dataset, _ = self._require()
        data = opening.user_dataset(path, adapter, dataset, token)
        return self._install(opening.Opened(adapter, data, self.info.title,
                                            self.info.default_layer, self._spec), token,
                             source=Path(path).name)

    def open_lesson_model(self, token: Optional[CancelToken] = None) -> ModelInfo:
        """Open the lesson-3 network, as trained so far, in the workbench."""
        from core.adapters.torch_adapter import TorchAdapter

        model, steps = self._lessons.trained_mlp()
        adapter = TorchAdapter(model, "lesson_mlp", (1, 16, 16))
        title = f"Lesson 3 network after {steps} steps (16 hidden neurons)"
        return self._install(opening.Opened(adapter, load_dataset("digits"), title, "fc1"))

    def _install(self, opened: opening.Opened, token: Optional[CancelToken] = None,
                 source: str = "built-in") -> ModelInfo:
        """Make ``opened`` the open model — the last step, after everything that can
        fail or be cancelled has succeeded."""
        from core.jobs import check

        check(token)  # a load cancelled at its last moment installs nothing
        adapter, dataset = opened.adapter, opened.dataset
        layers = adapter.layers()
        self._cache.clear()
        self.adapter, self.dataset, self._spec = adapter, dataset, opened.spec
        self._evaluator = Evaluator(adapter, dataset, self._cache)
        self._head_scores = None
        self._activity = {}
        self._units = UnitStudy(adapter, dataset, self._evaluator, self.evaluate,
                                self._dead_units)
        shown = slice(0, EXAMPLES_SHOWN)
        examples = None if dataset.display is None else _frozen(dataset.display[shown])
        # Rows of numbers get bar pictures, drawn per example asked for: pictures of a
        # whole table would take more memory than the table.
        self._rows = RowPictures(dataset.inputs) if dataset.kind is ModelKind.VALUES \
            else None
        if self._rows is not None:
            examples = self._rows(range(min(len(dataset), EXAMPLES_SHOWN)))
        self.info = ModelInfo(adapter.name, opened.title, layers, dataset.class_names,
                              dataset.name, len(dataset), opened.default_layer,
                              adapter.input_shape, sum(i.n_params for i in layers),
                              examples, np.array(dataset.labels[shown]), dataset.kind,
                              dataset.texts[:EXAMPLE_TEXTS], source, opened.note)
        return self.info

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
        if dataset.kind is ModelKind.TOKENS:
            length = int((dataset.inputs[index] != dataset.pad_id).sum())
            return Sample(index, None, None, dataset.inputs[index][:length],
                          dataset.labels[index][:length])
        if dataset.kind is ModelKind.EMBEDDING:
            length = int((dataset.inputs[index] != dataset.pad_id).sum())
            return Sample(index, None, None, dataset.inputs[index][:length])
        if dataset.kind is ModelKind.VALUES:
            return Sample(index, int(dataset.labels[index]), self._rows([index])[0],
                          dataset.inputs[index])
        return Sample(index, int(dataset.labels[index]), dataset.display[index],
                      dataset.inputs[index])

    def convert_drawing(self, gray: np.ndarray,
                        token: Optional[CancelToken] = None) -> ConvertedImage:
        """A drawing from the canvas, (h, w) 0..1, converted like an image file."""
        from core.files.images import convert_gray

        adapter, _, _ = self._require()
        converted = convert_gray(np.asarray(gray, np.float32), "your drawing")
        return opening.respecified(converted, self._spec, adapter)

    def encode_text(self, text: str, token: Optional[CancelToken] = None) -> np.ndarray:
        """Typed text -> token ids (T,) int64 for the open token model (InputError)."""
        # A model of the user's (a file, a live module) has no encoder: not an error
        # about built-in names.
        entry = ZOO.get(self.info.name) if self.info is not None else None
        if entry is None or entry.encoder is None:
            raise InputError("The open model does not read text.")
        try:
            ids = np.asarray(entry.encoder(text), dtype=np.int64)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        ids.setflags(write=False)
        return ids

    def load_image(self, path: str, token: Optional[CancelToken] = None) -> ConvertedImage:
        """Convert an image file into the current model's input (:class:`InputError`)."""
        from core.files.probe import probe_image

        adapter, _, _ = self._require()
        opening.refuse_special(path)
        probe_image(path)  # decode once in a sandbox process before decoding here
        converted = opening.respecified(load_image(path), self._spec, adapter)
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
        if self.info.kind is ModelKind.EMBEDDING:  # a vector, not class scores
            prediction = Embedding(_frozen(result.outputs[0]), _frozen(base[0]))
        else:
            probs = _frozen(_softmax(result.outputs[0]))
            # Nothing switched off: one array for both, which the pipe to the window
            # pickles once (a language model's (64, 49,152) is 12.6 MB).
            baseline = _frozen(_softmax(base[0])) if ablations else probs
            prediction = Prediction(probs, baseline, self.info.class_names)
        acts = {site: _frozen(arr[0]) for site, arr in result.activations.items()}
        dead = {site: activity.dead for site in sites
                if (activity := self.unit_activity(site, token)) is not None}
        return Capture(acts, prediction, ablations, result.report, dead)

    def unit_activity(self, site: str,
                      token: Optional[CancelToken] = None) -> Optional[UnitActivity]:
        """How often each unit of ``site`` fires over the evaluation set, read after its
        rectifier; ``None`` for a site with no rectifier (cached per model + data)."""
        adapter, _, evaluator = self._require()
        if site not in self._activity:
            rectifier = activation_after(adapter.layers(), site)
            self._activity[site] = None if rectifier is None else unit_activity(
                site, rectifier, evaluator.site_output(rectifier.name, token))
        return self._activity[site]

    def _dead_units(self, site: str, token: Optional[CancelToken] = None) -> tuple:
        activity = self.unit_activity(site, token)
        return () if activity is None else activity.dead

    def _checked_input(self, adapter: ModelAdapter, model_input: np.ndarray) -> np.ndarray:
        if self.info is not None and self.info.kind.reads_text:
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
            patterns = evaluator.site_outputs(sites, token)
            valid = np.ones(dataset.inputs.shape[:2], bool)
            if dataset.pad_id is not None:
                valid = dataset.inputs != dataset.pad_id
            self._head_scores = head_scores(patterns, dataset.inputs, valid)
        return self._head_scores

    def head_importance(self, mode: str = "zero",
                        token: Optional[CancelToken] = None) -> tuple[Sweep, ...]:
        """Each head of every attention layer ablated alone (batched per layer)."""
        from core.analysis import lm_head_importance

        adapter, _, evaluator = self._require()
        if lm_head_importance.supports(evaluator):  # a language model: one walk, batched
            return lm_head_importance.head_importance(evaluator, mode, token)
        sites = tuple(dict.fromkeys(i.heads_site for i in adapter.layers() if i.heads_site))
        layers = {i.name: i for i in adapter.layers()}
        return tuple(evaluator.sweep(site, range(layers[site].n_units), mode, token)
                     for site in sites)

    def evaluate(self, ablations: Sequence[Ablation] = (),
                 token: Optional[CancelToken] = None) -> EvalResult:
        """Accuracy over the evaluation split with and without ``ablations``."""
        _, _, evaluator = self._require()
        self._check_ablations(ablations)
        result = evaluator.evaluate(tuple(ablations), token)
        dead = tuple(self._dead_labels(ablations, token))
        return replace(result, dead=dead) if dead else result

    def _dead_labels(self, ablations: Sequence[Ablation], token: Optional[CancelToken]):
        """"fc1:3,7 never fire after relu3" for unit ablations of dead units only."""
        for abl in ablations:
            if abl.whole_layer or not abl.units:
                continue
            activity = self.unit_activity(abl.site, token)
            if activity is not None and set(abl.units) <= set(activity.dead):
                units = ",".join(str(u) for u in abl.units)
                yield f"{abl.site}:{units} never fire after {activity.activation}"

    # --- what does this unit do? (issue #13) ---------------------------------------
    def _study(self) -> UnitStudy:
        self._require()
        return self._units

    def unit_page(self, site: str, unit: int, k: int = 16,
                  token: Optional[CancelToken] = None) -> UnitPage:
        """Top-k and bottom-k examples of ``unit``, its histogram, per-class means,
        effect on the output and weights (see :mod:`core.unit_study`)."""
        return self._study().page(site, unit, k, token)

    def unit_importance(self, site: str, mode: str = "zero",
                        token: Optional[CancelToken] = None) -> Sweep:
        """Every unit of ``site`` switched off alone, in one fast exact sweep."""
        return self._study().importance(site, mode, token)

    def probes(self, token: Optional[CancelToken] = None) -> tuple[ProbeReport, ...]:
        """A logistic-regression probe per layer on a held-out split of the data."""
        return self._study().probes(token)

    def layer_map(self, site: str, token: Optional[CancelToken] = None) -> LayerMap:
        """PCA of ``site``'s activations over the evaluation set."""
        return self._study().layer_map(site, token)

    def feature_visualisation(self, site: str, unit: int, steps: int = 256,
                              token: Optional[CancelToken] = None) -> FeatureVis:
        """An input optimised to excite ``unit`` of ``site``."""
        return self._study().feature_visualisation(site, unit, steps, token)

    # --- language models (issue #14) -------------------------------------------------
    def logit_lens(self, model_input: np.ndarray, target: Optional[int] = None,
                   ablations: Sequence[Ablation] = (),
                   token: Optional[CancelToken] = None) -> LogitLens:
        """Every residual stream of one prompt read through the final norm and
        unembedding (see :mod:`core.analysis.logit_lens`)."""
        from core.analysis import logit_lens

        adapter, _, evaluator = self._require()
        x = self._checked_input(adapter, model_input)
        self._check_ablations(ablations)
        means = evaluator.means(sorted({a.site for a in ablations if a.mode == "mean"}),
                                token)
        return logit_lens.read(adapter, x, target, tuple(ablations), means, token)

    def activation_patching(self, clean: np.ndarray, corrupt: np.ndarray,
                            clean_answer: int, corrupt_answer: int, kind: str = "resid",
                            rows: Optional[Sequence[int]] = None,
                            token: Optional[CancelToken] = None) -> PatchGrid:
        """Clean activations patched into the corrupted run, cell by cell (see
        :mod:`core.analysis.patching`)."""
        adapter, _, _ = self._require()
        clean = self._checked_input(adapter, clean)
        corrupt = self._checked_input(adapter, corrupt)
        return self._patcher().grid(clean, corrupt, int(clean_answer), int(corrupt_answer),
                                    kind, rows, token)

    def patch_cell(self, clean: np.ndarray, corrupt: np.ndarray, kind: str, row: int,
                   column: int, token: Optional[CancelToken] = None) -> Prediction:
        """The corrupted run's prediction with one cell patched from the clean run."""
        adapter, _, _ = self._require()
        clean = self._checked_input(adapter, clean)
        corrupt = self._checked_input(adapter, corrupt)
        probs, base = self._patcher().cell(clean, corrupt, kind, int(row), int(column),
                                           token)
        return Prediction(_frozen(probs), _frozen(base), self.info.class_names)

    def _patcher(self):
        from core.analysis.patching import Patcher

        adapter, _, _ = self._require()
        if getattr(self, "_patch", None) is None or self._patch.adapter is not adapter:
            self._patch = Patcher(adapter, self.info.class_names)
        return self._patch

    def lm_tasks(self, token: Optional[CancelToken] = None) -> tuple[LmTask, ...]:
        """The open language model's evaluation tasks (see :mod:`core.lm_tasks`)."""
        from core import lm_tasks

        self._require()
        return lm_tasks.tasks(self.info.name)

    def use_task(self, name: str, token: Optional[CancelToken] = None) -> ModelInfo:
        """Evaluate on language-model task ``name`` from now on (InputError if the open
        model has no such task); the previous task stays if this fails."""
        from core import lm_tasks

        adapter, _, _ = self._require()
        data = lm_tasks.dataset(self.info.name, name)
        return self._install(opening.Opened(adapter, data, self.info.title,
                                            self.info.default_layer, self._spec), token)

    # --- lessons -------------------------------------------------------------------
    def lesson_start(self, trainer: str, seed: int = 0, lr: Optional[float] = None,
                     token: Optional[CancelToken] = None) -> Snapshot:
        """Start (or restart) a lesson's training; returns its first Snapshot."""
        return self._lessons.start(trainer, seed, lr)

    def lesson_step(self, n: int = 1, lr: Optional[float] = None, sample: int = 0,
                    token: Optional[CancelToken] = None) -> Snapshot:
        """``n`` gradient steps of the running lesson (at ``lr`` if given)."""
        return self._lessons.step(n, lr, sample, token)
