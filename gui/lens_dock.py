"""LensController: Analyse › Logit lens and its dock (issue #14).

The lens is read on the worker for the prompt the window shows, with the ablations in
force; while the dock is visible it is read again whenever either changes. A typed
target word is encoded in the core (its first token is used, and the caption says so
when the word is several). Models without a language model's readout get the core's
sentence in the dock.
"""

from __future__ import annotations

from functools import partial
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from core.errors import MechscopeError
from gui.docks import place_tall_dock
from gui.views.logit_lens_view import LogitLensView
from gui.worker import UnexpectedError

LENS = "logit-lens"
#: The lens wants height (31 or 61 rows): the share of the window its dock opens with.
DOCK_SHARE = 0.5


def read_lens(session, model_input: Optional[np.ndarray], index: int, word: str,
              ablations: tuple, token=None):
    """(lens, prompt, note) for ``model_input`` (None: dataset example ``index``), with
    the first token of ``word`` as target if any — one worker job, so the lens never
    waits on a second round trip."""
    if model_input is None:
        model_input = session.sample(index, token=token).model_input
    target, note = None, ""
    if word:
        ids = session.encode_text(word, token=token)
        if len(ids) == 0:
            raise MechscopeError(f"“{word}” is no token; type a word, e.g. “ Paris”.")
        target = int(ids[0])
        if len(ids) > 1:
            note = f"“{word}” is {len(ids)} tokens; its first is the target."
    lens = session.logit_lens(model_input, target, ablations, token=token)
    return lens, np.asarray(model_input), note


class LensController(QObject):
    """Owns the "Logit lens" action, its dock and its jobs."""

    shown = Signal(object)   # the LogitLens drawn

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.workbench = window.workbench
        self.analysis = window.analysis
        self.view = LogitLensView()
        self.dock = self.analysis._dock("Logit lens", self.view)
        self.action = QAction("&Logit lens", self)
        self.action.setShortcut(QKeySequence("Ctrl+L"))
        self.action.setToolTip("Each residual stream of the prompt read through the final "
                               "norm and unembedding: what would the model say here?")
        self.analysis.menu.addAction(self.action)
        #: The prompt the window shows (None: the dataset example of the workbench).
        self.current: Optional[np.ndarray] = None
        self.word = ""
        #: What the lens drawn (or being read) was asked for: (prompt, ablations, word).
        self._asked: Optional[tuple] = None
        self._placed = False
        wb = self.workbench
        self.action.triggered.connect(lambda: self.open())
        self.view.target_requested.connect(self.set_target)
        wb.capture_ready.connect(self._on_capture)
        wb.model_opened.connect(self._on_model_opened)
        wb.ablations_changed.connect(lambda _a: self.dock.isVisible() and self.refresh())
        self.dock.visibilityChanged.connect(self._on_visibility)

    # --- intent -----------------------------------------------------------------------
    def open(self, word: Optional[str] = None) -> None:
        """Show the dock and read the lens (``word``: a target to type first)."""
        if word is not None:
            self.view.target.setText(word)
            self.word = word
        self._place()
        self.analysis.show_dock(self.dock)
        window = self.window
        if window.dockWidgetArea(self.dock) == Qt.DockWidgetArea.BottomDockWidgetArea:
            window.resizeDocks([self.dock], [int(DOCK_SHARE * window.height())],
                               Qt.Orientation.Vertical)
        else:
            window.resizeDocks([self.dock], [int(DOCK_SHARE * window.width())],
                               Qt.Orientation.Horizontal)
        self.refresh(force=True)

    def _place(self) -> None:
        if not self._placed:
            self._placed = True
            place_tall_dock(self.window, self.dock)

    @Slot(str)
    def set_target(self, word: str) -> None:
        self.word = word
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Read the lens for the current prompt and ablations, unless it was already
        read for exactly those (``force``: read anyway)."""
        wb = self.workbench
        if wb.info is None:
            return
        prompt = None if self.current is None else self.current.tobytes()
        # A model that reads no text cannot encode the word: it is told why it has no
        # lens instead.
        word = self.word if wb.info.kind.reads_text else ""
        asked = (wb.info.name, prompt, wb.sample_index, wb.ablations, word)
        if not force and asked == self._asked:
            return
        self._asked = asked
        self.view.show_running(f"Reading the logit lens of {wb.info.title}…")
        self.window.worker.submit(
            LENS, read_lens, wb.session, self.current, wb.sample_index, word, wb.ablations,
            on_done=partial(self._on_lens, wb.info.name),
            on_error=self._on_failed, on_progress=self._on_progress,
            on_cancel=self._on_cancel)

    # --- results ------------------------------------------------------------------------
    def _on_lens(self, model: str, result) -> None:
        wb = self.workbench
        if wb.info is None or wb.info.name != model:
            return
        lens, _prompt, note = result
        self.view.show_lens(lens, wb.info.class_names, note)
        self.shown.emit(lens)

    def _on_failed(self, error: MechscopeError) -> None:
        self._asked = None  # the same request may work later (another model, prompt)
        self.view.show_message(str(error))
        if isinstance(error, UnexpectedError):
            self.workbench.report_error(error)

    def _on_progress(self, fraction: float, text: str) -> None:
        self.view.show_running(f"{text or 'Reading the logit lens'} … {100 * fraction:.0f} %")

    def _on_cancel(self) -> None:
        self._asked = None
        self.view.show_running("Cancelled. Logit lens (Ctrl+L) reads it again.")

    # --- the window's state ---------------------------------------------------------------
    @Slot(object, object)
    def _on_capture(self, _capture, current) -> None:
        """The window shows a prompt (typed, an example) with the ablations in force:
        a visible lens follows it."""
        if current is not None:
            self.current = np.asarray(current.model_input)
        if self.dock.isVisible():
            self.refresh()

    @Slot(object)
    def _on_model_opened(self, _info) -> None:
        self.current, self._asked = None, None
        self.view.show_message("Reading the logit lens of the new model when its input "
                               "is shown…" if self.dock.isVisible() else
                               "Analyse › Logit lens (Ctrl+L) reads the prompt's lens.")

    @Slot(bool)
    def _on_visibility(self, visible: bool) -> None:
        if visible:
            self.refresh()
