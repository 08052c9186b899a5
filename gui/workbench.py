"""Workbench: the presenter between the widgets and the session.

It holds the little state the window has (which model, layer, input and ablations),
turns user intent into worker jobs, and hands results to the widgets. Every session call
goes through the worker with its own callbacks: what a result needs travels with the
call (``functools.partial``), never in fields parked until it comes back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from core import ablation
from core.ablation import Ablation
from core.api import ModelInfo, OpenedFile, SessionAPI
from core.errors import AblationError, ForwardError, MechscopeError
from core.files.checkpoints import NeedsData, NeedsInputSpec, NeedsTrust
from core.kinds import LayerView
from gui.worker import UnexpectedError, Worker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurrentInput:
    """What is fed to the model: a dataset example or a converted image file."""

    model_input: np.ndarray
    label: Optional[int]
    description: str


def _sample_and_capture(session: SessionAPI, index: int, sites, ablations, token=None):
    sample = session.sample(index, token=token)
    return sample, session.capture(sample.model_input, sites, ablations, token=token)


class Workbench(QObject):
    """State + job routing for one window. Widgets talk to it through its slots."""

    model_opened = Signal(object)         # ModelInfo
    capture_ready = Signal(object, object)  # Capture, CurrentInput
    sample_ready = Signal(object)         # core.api.Sample
    image_ready = Signal(object)          # core.files.images.ConvertedImage
    evaluation_ready = Signal(object)     # EvalResult
    evaluation_cancelled = Signal()
    scores_ready = Signal(object)          # core.analysis.attention.HeadScores
    importance_ready = Signal(object)      # tuple of core.analysis.evaluate.Sweep
    ablations_changed = Signal(tuple)
    error = Signal(str)                   # a user error: shown in the message bar
    crashed = Signal(str)                 # a bug (UnexpectedError): shown in a dialog
    trust_needed = Signal(object)         # core.files.checkpoints.NeedsTrust: ask the user
    file_opened = Signal(str)             # a file opened: for "recent"
    spec_needed = Signal(object)          # core.files.checkpoints.NeedsInputSpec: ask once
    data_needed = Signal(object)          # core.files.checkpoints.NeedsData: ask for data
    stale = Signal(str, bool)             # ("view" | "accuracy", stale?)
    history_changed = Signal(bool, bool)  # can undo, can redo
    #: Every file outcome ("opened" or the message), for scripted runs that wait on it.
    file_outcome = Signal(str, str)       # path, "" if opened else the message

    def __init__(self, session: SessionAPI, worker: Worker,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.worker = worker
        self.info: Optional[ModelInfo] = None
        self.layer = ""
        self.sample_index = 0
        self.input: Optional[CurrentInput] = None
        self.ablations: tuple[Ablation, ...] = ()
        self.mode = "zero"
        #: Ablation sets before (undo) and after (redo) the current one, per model.
        self._undo: list[tuple[Ablation, ...]] = []
        self._redo: list[tuple[Ablation, ...]] = []
        #: Whether the views show the open model and data (not the previous ones).
        self._view_current = False

    # --- intent -----------------------------------------------------------------------
    def open_model(self, name: str) -> None:
        self.worker.submit("model", self.session.open_model, name,
                           on_done=self._on_model, on_error=self.report_error)

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
        self._refresh_view(need_layer=False)

    @Slot(str)
    def open_text(self, text: str) -> None:
        self.worker.submit("text", self.session.encode_text, text,
                           on_done=partial(self._on_text, text), on_error=self.report_error)

    @Slot()
    def measure_importance(self) -> None:
        if self.info is None:
            return
        self.worker.submit("importance", self.session.head_importance, self.mode,
                           on_done=partial(self._on_importance, self.info.name),
                           on_error=self.report_error)

    def _on_importance(self, model: str, sweeps) -> None:
        # Heads of a model that is no longer open would be charted as this one's.
        if self.info is not None and self.info.name == model:
            self.importance_ready.emit(sweeps)

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
                        spec=None, data: Optional[str] = None) -> None:
        """Open a user's model file, on ``data`` (the user's inputs and labels) if
        given; a file that is code comes back as trust_needed, a model whose input must
        be described as spec_needed, one that needs the user's data as data_needed."""
        self.worker.submit("model", self.session.open_checkpoint, path, trusted_sha256,
                           spec, data, on_done=partial(self._on_file_model, path),
                           on_error=partial(self._on_file_failed, path))

    @Slot(str)
    def open_file(self, path: str) -> None:
        """Any file or folder — from File › Open, a drop, the recent list or the command
        line: one route, decided in the core by what the path holds."""
        self.worker.submit("model", self.session.open_file, path,
                           on_done=self._on_opened_file,
                           on_error=partial(self._on_file_failed, path))

    @Slot(object)
    def use_drawing(self, gray) -> None:
        self.worker.submit("image", self.session.convert_drawing, gray,
                           on_done=partial(self._on_image, ""), on_error=self.report_error)

    def open_lesson_model(self) -> None:
        self.worker.submit("model", self.session.open_lesson_model,
                           on_done=self._on_model, on_error=self.report_error)

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
        # Only unit ablations have a mode the mode box can show: a "scale" or "skip"
        # taken as the mode left the box blank and broke "Whole layer off" (issue #12).
        modes = {abl.mode for abl in ablations if not abl.whole_layer}
        if len(modes) == 1:
            self.mode = modes.pop()
        self._set_ablations(tuple(ablations))

    @Slot()
    def undo(self) -> None:
        """Back to the ablations before the last change (Ctrl+Z)."""
        if self._undo:
            self._redo.append(self.ablations)
            self._set_ablations(self._undo.pop(), record=False)

    @Slot()
    def redo(self) -> None:
        """Forward again to the ablations an undo went back from (Ctrl+Shift+Z)."""
        if self._redo:
            self._undo.append(self.ablations)
            self._set_ablations(self._redo.pop(), record=False)

    # --- jobs -------------------------------------------------------------------------
    def _set_ablations(self, ablations: tuple[Ablation, ...], record: bool = True) -> None:
        if record and ablations != self.ablations:
            self._undo.append(self.ablations)
            self._redo.clear()
        self.ablations = ablations
        self.ablations_changed.emit(ablations)
        self.history_changed.emit(bool(self._undo), bool(self._redo))
        self._refresh_view()
        self._evaluate()

    def _clear_history(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self.history_changed.emit(False, False)

    def _sites(self) -> tuple[str, ...]:
        """What to capture for the selected layer: attention shows its pattern."""
        info = self.layer_info(self.layer)
        if info is None:
            return ()
        return (info.pattern_site,) if info.view is LayerView.ATTENTION else (info.name,)

    def _refresh_view(self, need_layer: bool = True) -> None:
        if self.info is None or (need_layer and not self.layer):
            return
        self.stale.emit("view", True)
        done = partial(self._on_view, self.input)
        if self.input is None:
            self.worker.submit("view", _sample_and_capture, self.session, self.sample_index,
                               self._sites(), self.ablations, on_done=done,
                               on_error=partial(self._on_view_failed, self.ablations),
                               on_cancel=self._on_view_cancel)
        else:
            self.worker.submit("view", self.session.capture, self.input.model_input,
                               self._sites(), self.ablations, on_done=done,
                               on_error=partial(self._on_view_failed, self.ablations),
                               on_cancel=self._on_view_cancel)

    def _evaluate(self) -> None:
        self.stale.emit("accuracy", True)
        self.worker.submit("accuracy", self.session.evaluate, self.ablations,
                           on_done=self._on_evaluated,
                           on_error=partial(self._on_evaluation_failed, self.ablations),
                           on_cancel=self.evaluation_cancelled.emit)

    # --- results (each reached only by the call that asked) --------------------------
    def _on_model(self, info: ModelInfo) -> None:
        log.info("model %s ready (%s)", info.name, info.title)
        self.info = info
        self.ablations = ()
        self._view_current = False
        self._clear_history()
        self.input = None
        names = [layer.name for layer in info.layers]
        if self.layer not in names:
            self.layer = info.default_layer
        self.sample_index = min(self.sample_index, info.dataset_size - 1)
        self.model_opened.emit(info)
        self.ablations_changed.emit(())
        self._refresh_view()
        self._evaluate()
        # Only a model with attention layers has heads to score (a live token model of
        # the user's may have none).
        if info.kind.reads_text and any(layer.pattern_site for layer in info.layers):
            self.worker.submit("scores", self.session.head_scores,
                               on_done=self.scores_ready.emit, on_error=self.report_error)

    def _on_file_model(self, path: str, info: ModelInfo) -> None:
        self._on_model(info)
        self.file_opened.emit(path)
        self.file_outcome.emit(path, "")

    def _on_opened_file(self, opened: OpenedFile) -> None:
        if opened.image is not None:
            self._on_image(opened.path, opened.image)
        else:
            self._on_file_model(opened.path, opened.info)

    def _on_image(self, path: str, converted) -> None:
        self.input = CurrentInput(converted.model_input, None, converted.path)
        self.image_ready.emit(converted)
        if path:
            self.file_opened.emit(path)
            self.file_outcome.emit(path, "")
        self._refresh_view()

    def _on_file_failed(self, path: str, error: MechscopeError) -> None:
        if not isinstance(error, (NeedsTrust, NeedsInputSpec, NeedsData)):
            self.file_outcome.emit(path, str(error))
        self.report_error(error)

    def _on_text(self, text: str, ids: np.ndarray) -> None:
        self.input = CurrentInput(ids, None, f"typed “{text}”")
        self._refresh_view()

    def _on_view(self, current: Optional[CurrentInput], result) -> None:
        if isinstance(result, tuple):
            sample, capture = result
            self.sample_ready.emit(sample)
            current = CurrentInput(sample.model_input, sample.label, f"example {sample.index}")
        else:
            capture = result
        self._view_current = True
        self.stale.emit("view", False)
        self.capture_ready.emit(capture, current)

    def _on_view_failed(self, tried: tuple[Ablation, ...], error: MechscopeError) -> None:
        self.stale.emit("view", False)
        self._take_back(tried, error)

    def _on_view_cancel(self) -> None:
        # Views still showing the previous model's or data's input stay tinted: they
        # are not what is open now (issue #10, Cancel right after opening data).
        self.stale.emit("view", not self._view_current)

    def _on_evaluated(self, result) -> None:
        self.stale.emit("accuracy", False)
        self.evaluation_ready.emit(result)

    def _on_evaluation_failed(self, tried: tuple[Ablation, ...],
                              error: MechscopeError) -> None:
        self.stale.emit("accuracy", False)
        self._take_back(tried, error)

    def _take_back(self, tried: tuple[Ablation, ...], error: MechscopeError) -> None:
        """Report a job's error; a change the model refused (a layer that cannot be
        skipped, issue #12; a live model whose forward fails on it, issue #15) is taken
        back, so the unit list never shows what the model is not running. The view and
        the evaluation of one change may both fail: only the first takes it back."""
        refused = isinstance(error, (AblationError, ForwardError))
        if not (refused and tried and tried == self.ablations and self._undo):
            self.report_error(error)
            return
        before = self._undo.pop()
        self.error.emit(f"{error} The last change was taken back: the units listed are "
                        "what the model runs.")
        self._set_ablations(before, record=False)

    def report_error(self, error: MechscopeError) -> None:
        """Route an error of one of this presenter's own jobs to the right place."""
        if isinstance(error, UnexpectedError):
            self.crashed.emit(str(error))
        elif isinstance(error, NeedsTrust):
            self.trust_needed.emit(error)
        elif isinstance(error, NeedsInputSpec):
            self.spec_needed.emit(error)
        elif isinstance(error, NeedsData):
            self.data_needed.emit(error)
        else:
            self.error.emit(str(error))

    def layer_info(self, name: str):
        if self.info is None:
            return None
        return next((layer for layer in self.info.layers if layer.name == name), None)
