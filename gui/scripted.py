"""Scripted runs of the real window, for CI, docs and the benchmarks: ``--smoke-test``,
``--screenshot`` (with ``--layer``, ``--ablate``, ``--lesson``, a FILE …) and
``--timing``. They drive the window the way a user would and wait on its signals,
never on time."""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QEvent, QObject, QTimer, Slot
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import QApplication

from core.ablation import Ablation
from core.kinds import LayerView
from gui.main_window import MainWindow

log = logging.getLogger(__name__)
SCRIPT_TIMEOUT_MS = 120_000


class Script(QObject):
    """Drives the window through a fixed list of steps, waiting on idleness (never on
    time): model loaded → lesson, or layer and input → a FILE → ablations → head
    importance → screenshot or smoke checks → quit.

    After each step the worker either has a job (its end advances the script) or not
    (the script advances at once) — so a step that changes nothing cannot stall it.
    """

    def __init__(self, window: MainWindow, options, app: QApplication) -> None:
        super().__init__(window)
        self.window, self.options, self.app = window, options, app
        self.exit_code = 1
        self.file_message = ""
        self.steps = self._plan()
        self.stage = 0
        window.worker.busy_changed.connect(self._on_busy_changed)
        window.workbench.error.connect(self._on_error)
        window.workbench.crashed.connect(self._on_error)
        window.workbench.file_outcome.connect(self._on_file_outcome)
        window.workbench.trust_needed.connect(self._on_question)
        window.workbench.spec_needed.connect(self._on_question)
        window.workbench.data_needed.connect(self._on_data_needed)
        # Both patching grids are ~100 forward passes of the prompt: minutes on 2 cores.
        patching = 5 if getattr(options, "patch", None) else 1
        QTimer.singleShot(patching * SCRIPT_TIMEOUT_MS, self._on_timeout)

    def _plan(self) -> list:
        opts, wb = self.options, self.window.workbench
        steps = []
        if getattr(opts, "task", ""):  # first: choosing a task re-installs the data
            steps.append(lambda: self.window.heads.use_task(opts.task))
        if opts.lesson:
            steps.append(lambda: self.window.lessons.open(opts.lesson))
            if opts.steps:
                steps.append(self._train)
        else:
            steps.append(self._layer_and_input)
        if opts.file:
            steps.append(lambda: self.window.files.open_given(opts.file))
            if opts.layer and not opts.lesson:
                # The file's model has layers of its own: --layer names one of them.
                steps.append(self._layer_of_file)
        if opts.ablations or (opts.smoke_test and not opts.file):
            steps.append(lambda: wb.set_ablations(opts.ablations or (self._first_unit(),)))
        heads = getattr(opts, "heads", False)
        if heads:
            steps.append(self.window.heads.open)
        if opts.importance:  # with --heads: every head of every layer
            steps.append(wb.measure_importance if heads else self._importance)
        if opts.unit:
            steps.append(self._unit_page)
            if opts.look_for:
                steps.append(self.window.unit_pages.look_for)
        if getattr(opts, "probes", False):
            steps.append(lambda: self.window.analysis.run_probes())
        if getattr(opts, "layer_map", False):
            steps.append(lambda: self.window.analysis.map_layer())
        if getattr(opts, "lens", False):
            steps.append(lambda: self.window.lens.open(opts.lens_target))
        if getattr(opts, "patch", None):
            # Every row of both grids: each job's end submits the next, so the script
            # sees the worker busy until the last row is drawn.
            steps.append(lambda: self.window.patching.run(*opts.patch,
                                                          *(opts.answers or ("", ""))))
        return steps

    def _unit_page(self) -> None:
        """The page of ``--unit``, beside its layer (unless ``--layer`` chose one)."""
        site, unit = self.options.unit
        layer = site[:-len(".heads")] if site.endswith(".heads") else site
        if not self.options.layer and self.window.workbench.layer_info(layer) is not None:
            self.window.model_tree.select(layer)
        self.window.unit_pages.open(site, unit)

    def _layer_of_file(self) -> None:
        """``--layer`` of the model a FILE opened (the built-in one, for an image or data
        file); a layer it lacks is the run's failure, said with the layers it has."""
        wb, layer = self.window.workbench, self.options.layer
        if self.file_message:  # it did not open: its message is the outcome
            return
        if wb.layer_info(layer) is None:
            names = ", ".join(item.name for item in wb.info.layers)
            self._on_error(f"--layer {layer}: {wb.info.name} has no such layer; its layers "
                           f"are {names}.")
        elif wb.layer != layer:
            self.window.model_tree.select(layer)

    def _layer_and_input(self) -> None:
        opts, wb = self.options, self.window.workbench
        if opts.layer:
            # With a FILE, the layer may be the file model's: chosen again once it opened.
            self.window.model_tree.select(opts.layer)
        if opts.text:
            wb.open_text(opts.text)
        else:
            wb.select_sample(opts.input_index or 0)

    def _train(self) -> None:
        if self.window.centre.currentWidget() is self.window.training_view:
            self.window.training_view.train(self.options.steps)

    def _importance(self) -> None:
        """Analyse › Measure importance of the selected layer (on an attention layer:
        the attention view's chart of every head)."""
        self.window.analysis.measure_importance()

    @Slot(bool)
    def _on_busy_changed(self, busy: bool) -> None:
        if not busy:
            # Let queued result signals land before looking at the window.
            QTimer.singleShot(0, self._advance)

    def _advance(self) -> None:
        if self.window.worker.busy or self.window.workbench.info is None:
            return
        if self.exit_code == 2:  # failed (an error of the last step): no screenshot over it
            return
        if self.stage >= len(self.steps):
            self._finish()
            return
        self.stage += 1
        self.steps[self.stage - 1]()
        QTimer.singleShot(0, self._advance)  # no-op if that step started a job

    def _first_unit(self) -> Ablation:
        wb = self.window.workbench
        info = wb.layer_info(wb.layer)
        site = info.heads_site if info.view is LayerView.ATTENTION else info.name
        return Ablation(site, (0,))

    def _finish(self) -> None:
        window = self.window
        if self.options.screenshot:
            window.repaint()
            # A few rounds: a label that grew in the last result relays out its scroll
            # area on a later turn (the unit page's notes were cut off by a line).
            for _ in range(3):
                self.app.processEvents()
            ok = self._grab_with_dialogs().save(self.options.screenshot)
            log.info("screenshot %s saved: %s", self.options.screenshot, ok)
            self.exit_code = 0 if ok else 1
        if self.options.smoke_test:
            result = window.accuracy_panel.result
            ok = result is not None and (bool(result.ablations) or bool(self.options.file))
            ok = ok and not self.file_message and self._lessons_ship()
            log.info("smoke test: score %s", None if result is None else result.score)
            self.exit_code = 0 if ok else 1
        window.close()

    def _grab_with_dialogs(self) -> QPixmap:
        """The window, with any question it is asking (trust, input scaling) drawn on
        top where the window system would show it: the outcome of opening such a file
        is the question."""
        shot = self.window.grab()
        files = self.window.files
        painter = QPainter(shot)
        for dialog in (files.dialog, files.spec_dialog):
            if dialog is not None and dialog.isVisible():
                picture = dialog.grab()
                corner = shot.rect().center() - picture.rect().center()
                painter.drawPixmap(corner, picture)
        painter.end()
        return shot

    @Slot(object)
    def _on_data_needed(self, question) -> None:
        # A script cannot choose a file: without --data, the sentence is the failure.
        if self.window.files.answered is question:
            return
        self.file_message = ""
        self._on_error(f"{question} (pass --data FILE to evaluate it on your own data)")

    @Slot(object)
    def _on_question(self, question) -> None:
        if self.window.files.answered is question:  # --trust answered it
            return
        # A file that needs an answer: its question is the outcome to show and print.
        self.file_message = ""
        print(f"{question.path}: {question}", flush=True)
        log.info("asked about %s: %s", question.path, question)

    @staticmethod
    def _lessons_ship() -> bool:
        """Every lesson text is there (the bundle once shipped without them)."""
        from core.lessons import LESSONS

        try:
            return all(item.text().strip() for item in LESSONS)
        except OSError:
            log.exception("a lesson text is missing")
            return False

    @Slot(str, str)
    def _on_file_outcome(self, path: str, message: str) -> None:
        # A file's message is its outcome, shown in the window (and screenshotted).
        self.file_message = message
        log.info("opened %s: %s", path, message or "ok")
        if message:
            print(f"{path}: {message}", flush=True)

    @Slot(str)
    def _on_error(self, text: str) -> None:
        if self.options.file and text == self.file_message:
            return
        log.error("scripted run failed: %s", text)
        print(f"error: {text}", flush=True)
        self.exit_code = 2
        self.window.close()

    def _on_timeout(self) -> None:
        log.error("scripted run timed out at step %d of %d", self.stage, len(self.steps))
        self.exit_code = 3
        self.window.close()


class StartupTimer(QObject):
    """Prints wall-clock stamps of the first paint and of "model ready", then quits
    (``--timing``; bench/bench_startup.py subtracts its own launch time)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.painted = False
        window.installEventFilter(self)
        window.workbench.model_opened.connect(self._on_model_opened)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Paint and not self.painted:
            self.painted = True
            print(f"first-paint {time.time():.4f}", flush=True)
        return False

    @Slot(object)
    def _on_model_opened(self, _info) -> None:
        print(f"model-ready {time.time():.4f}", flush=True)
        QTimer.singleShot(0, self.window.close)



