"""Workbench: the presenter between the widgets and the session.

It holds the little state the window has (which model, layer, input and ablations),
turns user intent into worker jobs, and hands results to the widgets. Every session call
goes through the worker; nothing here computes numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from core import ablation
from core.ablation import Ablation
from core.files.checkpoints import NeedsInputSpec, NeedsTrust
from core.errors import MechscopeError
from core.session import ModelInfo, Session
from core.files.sniff import sniff
from gui.worker import UnexpectedError, Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurrentInput:
    """What is fed to the model: a dataset example or a converted image file."""

    model_input: np.ndarray
    label: Optional[int]
    description: str


def _classify(path: str, token=None) -> tuple[str, str]:
    return path, "folder" if Path(path).is_dir() else sniff(path).kind


def _sample_and_capture(session: Session, index: int, sites, ablations, token=None):
    sample = session.sample(index)
    return sample, session.capture(sample.model_input, sites, ablations, token=token)


class Workbench(QObject):
    """State + job routing for one window. Widgets talk to it through its slots."""

    model_opened = Signal(object)         # ModelInfo
    capture_ready = Signal(object, object)  # Capture, CurrentInput
    sample_ready = Signal(object)         # core.session.Sample
    image_ready = Signal(object)          # core.files.images.ConvertedImage
    evaluation_ready = Signal(object)     # EvalResult
    evaluation_cancelled = Signal()
    tokens_ready = Signal(object, str)     # token ids (T,), description
    scores_ready = Signal(object)          # core.analysis.attention.HeadScores
    importance_ready = Signal(object)      # tuple of core.analysis.evaluate.Sweep
    ablations_changed = Signal(tuple)
    error = Signal(str)                   # a user error: shown in the message bar
    crashed = Signal(str)                 # a bug (UnexpectedError): shown in a dialog
    trust_needed = Signal(object)         # core.files.checkpoints.NeedsTrust: ask the user
    file_opened = Signal(str)             # an image or model file opened: for "recent"
    spec_needed = Signal(object)          # core.files.checkpoints.NeedsInputSpec: ask once
    stale = Signal(str, bool)             # ("view" | "accuracy", stale?)

    def __init__(self, session: Session, worker: Worker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker = worker
        self.info: Optional[ModelInfo] = None
        self._typed = ""
        self._checkpoint = ""
        self.layer = ""
        self.sample_index = 0
        self.input: Optional[CurrentInput] = None
        self.ablations: tuple[Ablation, ...] = ()
        self.mode = "zero"
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)

    # --- intent -----------------------------------------------------------------------
    def open_model(self, name: str) -> None:
        self._checkpoint = ""
        self.worker.submit("model", self.session.open_model, name)

    @Slot(str)
    def select_layer(self, name: str) -> None:
        self.layer = name
        self._refresh_view()

    @Slot(int)
    def select_sample(self, index: int) -> None:
        if self.info is None:
            return
        self.sample_index = index
        self.input = None
        self.stale.emit("view", True)
        self.worker.submit("view", _sample_and_capture, self.session, index, self._sites(),
                           self.ablations)

    @Slot(str)
    def open_image(self, path: str) -> None:
        self.worker.submit("image", self.session.load_image, path)

    @Slot(str)
    def open_text(self, text: str) -> None:
        self._typed = text
        self.worker.submit("text", self.session.encode_text, text)

    @Slot()
    def measure_importance(self) -> None:
        self.worker.submit("importance", self.session.head_importance, self.mode)

    @Slot(object)
    def apply_layer_change(self, change: Ablation) -> None:
        """A whole-layer change: all units off (merged like toggles), skip, or scale."""
        if change.whole_layer:
            self._set_ablations(ablation.replace_layer_change(self.ablations, change))
        else:
            rest = tuple(a for a in self.ablations
                         if not (a.site == change.site and not a.whole_layer))
            self._set_ablations(rest + (change,))

    def open_checkpoint(self, path: str, trusted_sha256: Optional[str] = None,
                        spec=None) -> None:
        """Open a user's model file; a file that is code comes back as trust_needed, a
        model whose input must be described as spec_needed."""
        self._checkpoint = path
        self.worker.submit("model", self.session.open_checkpoint, path, trusted_sha256,
                           spec)

    @Slot(str)
    def open_file(self, path: str) -> None:
        """A file or folder from the menu, the recent list or a drop: an image, your
        evaluation data (a folder, .npz, .npy, .csv) or a model."""
        # Reading the file (a zip's directory, say) is I/O: not on the GUI thread.
        self.worker.submit("open", _classify, path)

    def _dispatch(self, path: str, kind: str) -> None:
        if kind == "image":
            self.open_image(path)
        elif kind in ("folder", "npz", "npy") or path.lower().endswith(".csv"):
            self.use_dataset(path)
        else:
            self.open_checkpoint(path)

    @Slot(str)
    def use_dataset(self, path: str) -> None:
        self._checkpoint = ""
        self.worker.submit("model", self.session.use_dataset, path)

    @Slot(object)
    def use_drawing(self, gray) -> None:
        self.worker.submit("image", self.session.convert_drawing, gray)

    def open_lesson_model(self) -> None:
        self.worker.submit("model", self.session.open_lesson_model)

    @Slot(str, int)
    def toggle_unit(self, site: str, unit: int) -> None:
        self._set_ablations(ablation.toggle(self.ablations, site, unit, self.mode))

    @Slot(str)
    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if self.ablations:
            self._set_ablations(ablation.with_mode(self.ablations, mode))

    @Slot()
    def reset_ablations(self) -> None:
        self._set_ablations(())

    def set_ablations(self, ablations: tuple[Ablation, ...]) -> None:
        modes = {abl.mode for abl in ablations}
        if len(modes) == 1:
            self.mode = modes.pop()
        self._set_ablations(tuple(ablations))

    # --- jobs -------------------------------------------------------------------------
    def _set_ablations(self, ablations: tuple[Ablation, ...]) -> None:
        self.ablations = ablations
        self.ablations_changed.emit(ablations)
        self._refresh_view()
        self._evaluate()

    def _sites(self) -> tuple[str, ...]:
        """What to capture for the selected layer: attention shows its pattern."""
        info = self.layer_info(self.layer)
        if info is None:
            return ()
        return (info.pattern_site,) if info.view == "attention" else (info.name,)

    def _refresh_view(self) -> None:
        if self.info is None or not self.layer:
            return
        self.stale.emit("view", True)
        if self.input is None:
            self.worker.submit("view", _sample_and_capture, self.session, self.sample_index,
                               self._sites(), self.ablations)
        else:
            self.worker.submit("view", self.session.capture, self.input.model_input,
                               self._sites(), self.ablations)

    def _evaluate(self) -> None:
        self.stale.emit("accuracy", True)
        self.worker.submit("accuracy", self.session.evaluate, self.ablations)

    @Slot(str, object)
    def _on_finished(self, key: str, result: object) -> None:
        if key == "model":
            self._on_model(result)
            if self._checkpoint:
                self.file_opened.emit(self._checkpoint)
        elif key == "view":
            self._on_view(result)
        elif key == "image":
            self.input = CurrentInput(result.model_input, None, result.path)
            self.image_ready.emit(result)
            if Path(result.path).is_file():
                self.file_opened.emit(result.path)
            self._refresh_view()
        elif key == "open":
            self._dispatch(*result)
        elif key == "text":
            self.input = CurrentInput(result, None, f"typed “{self._typed}”")
            self._refresh_view()
        elif key == "accuracy":
            self.evaluation_ready.emit(result)
        elif key == "scores":
            self.scores_ready.emit(result)
        elif key == "importance":
            self.importance_ready.emit(result)

    def _on_model(self, info: ModelInfo) -> None:
        log.info("model %s ready (%s)", info.name, info.title)
        self.info = info
        self.ablations = ()
        self.input = None
        names = [layer.name for layer in info.layers]
        if self.layer not in names:
            self.layer = info.default_layer
        self.sample_index = min(self.sample_index, info.dataset_size - 1)
        self.model_opened.emit(info)
        self.ablations_changed.emit(())
        self._refresh_view()
        self._evaluate()
        if info.kind != "image":
            self.worker.submit("scores", self.session.head_scores)

    def _on_view(self, result) -> None:
        if isinstance(result, tuple):
            sample, capture = result
            self.input = None
            self.sample_ready.emit(sample)
            current = CurrentInput(sample.model_input, sample.label, f"example {sample.index}")
        else:
            capture = result
            current = self.input
        self.stale.emit("view", False)
        self.capture_ready.emit(capture, current)

    @Slot(str, object)
    def _on_failed(self, key: str, error: MechscopeError) -> None:
        self.stale.emit("accuracy" if key == "accuracy" else "view", False)
        if isinstance(error, UnexpectedError):
            self.crashed.emit(str(error))
        elif isinstance(error, NeedsTrust):
            self.trust_needed.emit(error)
        elif isinstance(error, NeedsInputSpec):
            self.spec_needed.emit(error)
        else:
            self.error.emit(str(error))

    @Slot(str)
    def _on_cancelled(self, key: str) -> None:
        if key == "accuracy":
            self.evaluation_cancelled.emit()
        else:
            self.stale.emit("view", False)

    def layer_info(self, name: str):
        if self.info is None:
            return None
        return next((layer for layer in self.info.layers if layer.name == name), None)
