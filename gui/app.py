"""Start-up: the QApplication, the window first, the model after; and the scripted runs
(``--smoke-test``, ``--screenshot``) that drive the real window for CI and docs."""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QTimer, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from core.ablation import Ablation
from core.paths import resource_path
from core.runtime import tune_allocator
from core.session import Session
from gui import crash
from core.zoo import DEFAULT_MODEL, ZOO
from gui.main_window import MainWindow
from gui.settings import AppSettings

log = logging.getLogger(__name__)
SCRIPT_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class Options:
    model: Optional[str] = None
    layer: Optional[str] = None
    input_index: Optional[int] = None
    ablations: tuple[Ablation, ...] = ()
    screenshot: Optional[str] = None
    smoke_test: bool = False
    text: Optional[str] = None
    importance: bool = False
    timing: bool = False
    lesson: Optional[int] = None
    steps: int = 0


def configure_pyqtgraph() -> None:
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


class Script(QObject):
    """Drives the window through a fixed sequence, waiting on idleness (never on time):
    model loaded → layer/input chosen → (ablations) → screenshot or smoke checks → quit."""

    def __init__(self, window: MainWindow, options: Options, app: QApplication) -> None:
        super().__init__(window)
        self.window, self.options, self.app = window, options, app
        self.stage = 0
        self.exit_code = 1
        window.worker.busy_changed.connect(self._on_busy_changed)
        window.workbench.error.connect(self._on_error)
        window.workbench.crashed.connect(self._on_error)
        QTimer.singleShot(SCRIPT_TIMEOUT_MS, self._on_timeout)

    @Slot(bool)
    def _on_busy_changed(self, busy: bool) -> None:
        if not busy:
            # Let queued result signals land before looking at the window.
            QTimer.singleShot(0, self._advance)

    def _advance(self) -> None:
        if self.window.worker.busy or self.window.workbench.info is None:
            return
        wb, opts = self.window.workbench, self.options
        self.stage += 1
        if self.stage == 1 and opts.lesson:
            self.window.lessons.open(opts.lesson)
        elif self.stage == 2 and opts.lesson and opts.steps:
            if self.window.centre.currentWidget() is self.window.training_view:
                self.window.training_view.train(opts.steps)
        elif self.stage == 1:
            if opts.layer:
                self.window.model_tree.select(opts.layer)
            if opts.text:
                wb.open_text(opts.text)
            else:
                wb.select_sample(opts.input_index or 0)
        elif self.stage == 2 and (opts.ablations or opts.smoke_test):
            wb.set_ablations(opts.ablations or (self._first_unit(),))
        elif self.stage <= 3 and opts.importance and wb.info.kind == "tokens":
            self.stage = 3
            wb.measure_importance()
        else:
            self._finish()

    def _first_unit(self) -> Ablation:
        wb = self.window.workbench
        info = wb.layer_info(wb.layer)
        site = info.heads_site if info.view == "attention" else info.name
        return Ablation(site, (0,))

    def _finish(self) -> None:
        window = self.window
        if self.options.screenshot:
            window.repaint()
            self.app.processEvents()
            ok = window.grab().save(self.options.screenshot)
            log.info("screenshot %s saved: %s", self.options.screenshot, ok)
            self.exit_code = 0 if ok else 1
        if self.options.smoke_test:
            result = window.accuracy_panel.result
            ok = result is not None and bool(result.ablations)
            log.info("smoke test: accuracy %s", None if result is None else result.accuracy)
            self.exit_code = 0 if ok else 1
        window.close()

    @Slot(str)
    def _on_error(self, text: str) -> None:
        log.error("scripted run failed: %s", text)
        print(f"error: {text}")
        self.exit_code = 2
        self.window.close()

    def _on_timeout(self) -> None:
        log.error("scripted run timed out at stage %d", self.stage)
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


def _start_state(options: Options, settings: Optional[AppSettings]) -> tuple[str, str, int]:
    """Model, layer and input to open: the command line first, then the last session."""
    last = settings.last_model if settings else None
    model = options.model or (last if last in ZOO else None) or DEFAULT_MODEL
    same = settings is not None and model == last
    layer = options.layer or (settings.last_layer if same else None) or ""
    index = options.input_index if options.input_index is not None else (
        settings.last_input if same else 0)
    return model, layer, index


def run(options: Options, session=None) -> int:
    """Show the window, open the model on the worker, and run the event loop."""
    # The name first: the log's folder (~/.local/share/Mechscope) is derived from it.
    QApplication.setApplicationName("Mechscope")
    crash.setup_logging()
    tune_allocator()
    configure_pyqtgraph()
    app = QApplication.instance() or QApplication([])
    app.setWindowIcon(QIcon(str(resource_path("icons", "mechscope.png"))))
    scripted = options.smoke_test or options.screenshot or options.timing
    # Scripted runs are reproducible: they neither read nor write the user's settings.
    settings = None if scripted else AppSettings()
    window = MainWindow(session if session is not None else Session(), settings=settings)
    crash.install_excepthook(window.crash_dialog.report)
    model, layer, index = _start_state(options, settings)
    window.workbench.layer = layer
    window.workbench.sample_index = index
    window.show()
    script = Script(window, options, app) if options.smoke_test or options.screenshot else None
    timer = StartupTimer(window) if options.timing else None  # noqa: F841 (kept alive)
    # The window paints before torch is imported: the model opens on the worker.
    QTimer.singleShot(0, lambda: window.workbench.open_model(model))
    # Ctrl-C in the terminal, or a logout's SIGTERM, closes the window normally (settings
    # saved, compute process stopped) instead of killing the interpreter mid-flight.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    signal.signal(signal.SIGTERM, lambda *_: window.close())
    keepalive = QTimer()
    keepalive.start(200)
    keepalive.timeout.connect(lambda: None)
    app.exec()
    return script.exit_code if script else 0
