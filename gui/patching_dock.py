"""PatchingController: Analyse › Activation patching… (issue #14) — its dock, and the
jobs that fill it.

A run first encodes the prompts and answers (an empty answer: the model's top
prediction on its prompt) and draws the empty grids; then it asks the session for a few
rows at a time, residual stream first, heads after, and draws each answer as it comes —
the grid streams in and every job can be stopped. A new run, or another model,
supersedes the old one (one worker key), and late answers of an old run are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow

from core.analysis.patching import examples
from core.errors import InputError, MechscopeError
from core.kinds import ModelKind
from gui.docks import make_dock
from gui.views.patching_view import EMPTY, PatchingView

KEY, CELL_KEY = "patching", "patching-cell"
#: Rows per job: small enough that the grid visibly fills in and Stop answers soon.
ROWS_PER_JOB = 3
NOT_LM = ("Activation patching needs a language model of blocks on a residual stream: "
          "open smollm2-135m in the Model box ({title} is open).")


@dataclass(frozen=True)
class Prompts:
    """A run's encoded prompts and answers."""

    clean: np.ndarray
    corrupt: np.ndarray
    clean_answer: int
    corrupt_answer: int


def prepare(session, clean: str, corrupt: str, clean_answer: str, corrupt_answer: str,
            token=None):
    """Runs on the worker: the prompts and answers as ids, and both grids empty (which
    checks the lengths and answers before any row is computed)."""
    c = session.encode_text(clean, token=token)
    x = session.encode_text(corrupt, token=token)
    if len(c) != len(x):
        raise InputError(f"The clean prompt is {len(c)} tokens and the corrupted prompt "
                         f"{len(x)}: patching compares them position by position, so "
                         f"they need the same number of tokens. Change a word for one "
                         f"of the same length.")
    answers = []
    for text, prompt in ((clean_answer, c), (corrupt_answer, x)):
        if text:
            ids = session.encode_text(text, token=token)
            if len(ids) != 1:
                raise InputError(f"The answer “{text}” is {len(ids)} tokens; an answer "
                                 f"must be one token (mind the space before a word: "
                                 f"“ Paris”). Leave it empty for the model's own top "
                                 f"prediction.")
            answers.append(int(ids[0]))
        else:
            probs = session.capture(prompt, (), token=token).prediction.probabilities
            answers.append(int(np.argmax(probs[-1])))
    prompts = Prompts(c, x, *answers)
    grids = tuple(session.activation_patching(c, x, *answers, kind=kind, rows=(),
                                              token=token) for kind in ("resid", "heads"))
    return prompts, grids


class PatchingController(QObject):
    """Owns the patching dock and its jobs.

    Signals: ``grid_shown(PatchGrid)`` after each drawn answer, ``finished()`` when
    both grids are complete, ``cell_shown(Prediction)`` after a clicked cell."""

    grid_shown = Signal(object)
    finished = Signal()
    cell_shown = Signal(object)

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self.window, self.workbench, self.worker = window, window.workbench, window.worker
        self.view = PatchingView()
        self.view.set_examples(examples())
        self.dock = make_dock("Activation patching", self.view, window)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        beside = getattr(window, "experiments_dock", None)
        if beside is not None:
            window.tabifyDockWidget(beside, self.dock)
        self.dock.hide()
        if hasattr(window, "view_menu"):
            window.view_menu.addAction(self.dock.toggleViewAction())
        self.action = QAction("Activation &patching…", self)
        self.action.setToolTip("Patch clean activations into a corrupted prompt's run, "
                               "one layer and position (or head) at a time")
        window.analysis.menu.addAction(self.action)
        self.prompts: Prompts | None = None
        self._request = 0
        self._plan: list[tuple[str, list[int]]] = []
        self._total = self._done = 0
        self.action.triggered.connect(lambda: self.open())
        self.view.run_requested.connect(self.run)
        self.view.cancel_requested.connect(self.cancel)
        self.view.cell_requested.connect(self.patch_cell)
        self.workbench.model_opened.connect(self._on_model_opened)

    # --- showing -----------------------------------------------------------------------
    def open(self) -> None:
        """Show the dock, tall enough for 31 rows of the grid."""
        window = self.window
        self.dock.show()
        self.dock.raise_()
        if window.dockWidgetArea(self.dock) == Qt.DockWidgetArea.BottomDockWidgetArea:
            height = int(max(0.55 * window.height(), 300))
            window.resizeDocks([self.dock], [height], Qt.Orientation.Vertical)
        info = self.workbench.info
        if info is not None and info.kind is not ModelKind.TOKENS:
            self.view.set_message(NOT_LM.format(title=info.title))

    # --- a run ---------------------------------------------------------------------------
    @Slot(str, str, str, str)
    def run(self, clean: str, corrupt: str, clean_answer: str = "",
            corrupt_answer: str = "") -> None:
        self.open()
        view = self.view
        if (clean, corrupt, clean_answer, corrupt_answer) != (
                view.clean.text(), view.corrupt.text(), view.clean_answer.text(),
                view.corrupt_answer.text()):  # asked from elsewhere (the command line)
            view.set_prompts(clean, corrupt, clean_answer, corrupt_answer)
        view.find_example(clean, corrupt)
        info = self.workbench.info
        self._request += 1
        if info is None or info.kind is not ModelKind.TOKENS:
            self.worker.cancel(KEY)
            self.view.set_message(NOT_LM.format(title=info.title if info else "no model"))
            return
        self.view.set_busy(True)
        self.view.set_message("Encoding the prompts and running both once…")
        self.worker.submit(KEY, prepare, self.workbench.session, clean, corrupt,
                           clean_answer, corrupt_answer,
                           on_done=partial(self._on_prepared, self._request),
                           on_error=partial(self._on_error, self._request),
                           on_cancel=partial(self._on_cancel, self._request))

    def cancel(self) -> None:
        self.worker.cancel(KEY)

    def _on_prepared(self, request: int, outcome) -> None:
        if request != self._request:
            return
        prompts, grids = outcome
        self.prompts = prompts
        self.view.clear()
        names = self.view.names = self.workbench.info.class_names
        self.view.show_answers(names[prompts.clean_answer], names[prompts.corrupt_answer])
        for grid in grids:
            self.view.show_grid(grid)
        self._plan = [(g.kind, rows[i:i + ROWS_PER_JOB]) for g in grids
                      for rows in [list(range(len(g.rows)))]
                      for i in range(0, len(rows), ROWS_PER_JOB)]
        self._total, self._done = sum(len(r) for _, r in self._plan), 0
        self._next(request)

    def _next(self, request: int) -> None:
        if not self._plan:
            self.view.set_busy(False)
            self.view.set_message(self._summary())
            heads = self.view.grids.get("heads")
            if heads is not None:  # what the strongest head alone does, shown at once
                self.view.select("heads", *np.unravel_index(np.nanargmax(heads.score),
                                                             heads.score.shape))
            self.finished.emit()
            return
        kind, rows = self._plan.pop(0)
        p = self.prompts
        self.worker.submit(KEY, self.workbench.session.activation_patching, p.clean,
                           p.corrupt, p.clean_answer, p.corrupt_answer, kind, rows,
                           on_done=partial(self._on_rows, request, len(rows)),
                           on_error=partial(self._on_error, request),
                           on_progress=partial(self._on_progress, request, kind, rows),
                           on_cancel=partial(self._on_cancel, request))

    def _on_progress(self, request: int, kind: str, rows: list[int], fraction: float,
                     _text: str) -> None:
        if request != self._request:
            return
        what = "residual stream" if kind == "resid" else "heads"
        done = self._done + fraction * len(rows)
        self.view.set_message(f"Patching the {what}, blocks {rows[0]}–{rows[-1]}… "
                              f"({done / max(self._total, 1):.0%} of both grids)")

    def _on_rows(self, request: int, n: int, grid) -> None:
        if request != self._request:
            return
        self._done += n
        self.view.show_grid(grid)
        self.grid_shown.emit(grid)
        self._next(request)

    def _on_error(self, request: int, error: MechscopeError) -> None:
        if request != self._request:
            return
        self.view.set_busy(False)
        self.view.set_message(str(error))

    def _on_cancel(self, request: int) -> None:
        if request != self._request:
            return
        self._plan = []
        self.view.set_busy(False)
        self.view.set_message(f"Stopped after {self._done} of {self._total} rows. Run again "
                              "to finish: the rows already computed are kept.")

    def _summary(self) -> str:
        grids, names = self.view.grids, self.workbench.info.class_names
        resid, heads = grids.get("resid"), grids.get("heads")
        if resid is None or heads is None:
            return ""
        p = self.prompts
        a, b = names[p.clean_answer], names[p.corrupt_answer]
        layer, head = np.unravel_index(np.nanargmax(heads.score), heads.score.shape)
        return (f"Metric: logit[{a}] − logit[{b}] at the last position: clean "
                f"{resid.clean_diff:+.2f}, corrupted {resid.corrupt_diff:+.2f}. The head "
                f"that restores most alone: head {head} of block {heads.row_labels[layer]} "
                f"({heads.score[layer, head]:.0%}).")

    # --- one cell ------------------------------------------------------------------------
    @Slot(str, int, int)
    def patch_cell(self, kind: str, row: int, column: int) -> None:
        if self.prompts is None:
            return
        p = self.prompts
        self.worker.submit(CELL_KEY, self.workbench.session.patch_cell, p.clean, p.corrupt,
                           kind, row, column,
                           on_done=partial(self._on_cell, self._request, kind, row, column),
                           on_error=partial(self._on_error, self._request))

    def _on_cell(self, request: int, kind: str, row: int, column: int, prediction) -> None:
        if request != self._request or self.workbench.info is None:
            return
        self.view.show_cell(kind, row, column, prediction, self.workbench.info.class_names)
        self.cell_shown.emit(prediction)

    @Slot(object)
    def _on_model_opened(self, info) -> None:
        self._request += 1
        self.prompts = None
        self.worker.cancel(KEY)
        self.view.set_busy(False)
        self.view.clear()
        self.view.set_message(EMPTY if info.kind is ModelKind.TOKENS
                              else NOT_LM.format(title=info.title))
