"""Start-up: the QApplication, the window first, the model after. The scripted runs
(``--smoke-test``, ``--screenshot``, ``--timing``) live in :mod:`gui.scripted`."""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from core.ablation import Ablation
from core.api import SessionAPI
from core.paths import resource_path
from core.runtime import tune_allocator
from gui import crash
from core.zoo import DEFAULT_MODEL, ZOO
from gui.main_window import MainWindow
from gui.scripted import Script, StartupTimer
from gui.settings import AppSettings

log = logging.getLogger(__name__)


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
    #: A model file, data file or image to open as File › Open would (``main.py FILE``).
    file: Optional[str] = None
    #: Open the page of this unit, (site, unit), before the screenshot (``--unit``).
    unit: Optional[tuple[str, int]] = None
    #: With ``unit``: run "What does it look for?" too (``--look-for``).
    look_for: bool = False
    #: Window size (width, height) for scripted runs (``--size``).
    size: Optional[tuple[int, int]] = None
    #: Analyse › Probes… / Map of this layer (``--layer``) before the screenshot.
    probes: bool = False
    layer_map: bool = False
    #: Analyse › Logit lens of the prompt before the screenshot (``--lens``), coloured
    #: by the probability of ``lens_target``'s first token if given.
    lens: bool = False
    lens_target: str = ""
    #: Activation patching of (clean, corrupted) prompts, the whole grid, before the
    #: screenshot (``--patch``); ``answers``: (clean, corrupt) answer texts or None.
    patch: Optional[tuple[str, str]] = None
    answers: Optional[tuple[str, str]] = None
    #: Analyse › Every head… before the screenshot (``--heads``); the language-model
    #: task to evaluate on (``--task``).
    heads: bool = False
    task: str = ""
    #: With ``file``: the data its model is evaluated on (``--data``), and whether the
    #: file is trusted though it is code (``--trust``; else the window asks).
    data: Optional[str] = None
    trust: bool = False


def configure_pyqtgraph() -> None:
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


def _start_state(options: Options, settings: Optional[AppSettings]) -> tuple[str, str, int]:
    """Model, layer and input to open: the command line first, then the last session."""
    last = settings.last_model if settings else None
    model = options.model or (last if last in ZOO else None) or DEFAULT_MODEL
    same = settings is not None and model == last
    layer = options.layer or (settings.last_layer if same else None) or ""
    index = options.input_index if options.input_index is not None else (
        settings.last_input if same else 0)
    return model, layer, index


def application() -> QApplication:
    """The QApplication (made once per process), with logging and plotting set up."""
    # The name first: the log's folder (~/.local/share/Mechscope) is derived from it.
    QApplication.setApplicationName("Mechscope")
    crash.setup_logging()
    tune_allocator()
    configure_pyqtgraph()
    app = QApplication.instance() or QApplication([])
    app.setWindowIcon(QIcon(str(resource_path("icons", "mechscope.png"))))
    return app


def make_window(session: SessionAPI, settings: Optional[AppSettings]) -> MainWindow:
    """The window on ``session``, with the crash dialog as the exception hook."""
    window = MainWindow(session, settings=settings)
    if hasattr(session, "on_restart"):  # the compute process tells when it is replaced
        session.on_restart = window.worker.notice.emit
    crash.install_excepthook(window.crash_dialog.report)
    return window


def run(options: Options, session: Optional[SessionAPI] = None) -> int:
    """Show the window, open the model on the worker, and run the event loop."""
    app = application()
    scripted = options.smoke_test or options.screenshot or options.timing
    # Scripted runs are reproducible: they neither read nor write the user's settings.
    settings = None if scripted else AppSettings()
    if session is None:
        from core.session import Session

        session = Session()
    window = make_window(session, settings)
    if options.size:
        window.resize(*options.size)
    if options.file:
        window.files.set_command_line(options.file, options.data, options.trust)
    model, layer, index = _start_state(options, settings)
    window.workbench.layer = layer
    window.workbench.sample_index = index
    window.show()
    script = Script(window, options, app) if options.smoke_test or options.screenshot else None
    timer = StartupTimer(window) if options.timing else None  # noqa: F841 (kept alive)
    # The window paints before torch is imported: the model opens on the worker.
    QTimer.singleShot(0, lambda: window.workbench.open_model(model))
    if options.file and script is None:
        # Opened after the model, as File › Open would: same route, same dialogs.
        window.workbench.model_opened.connect(_once(window, options.file, options.layer))
    # Ctrl-C in the terminal, or a logout's SIGTERM, closes the window normally (settings
    # saved, compute process stopped) instead of killing the interpreter mid-flight.
    # Queued, not called: a signal that arrives before the event loop runs would close
    # the window before app.exec() and leave the loop waiting forever.
    def close_soon(*_args) -> None:
        QTimer.singleShot(0, window.close)

    signal.signal(signal.SIGINT, close_soon)
    signal.signal(signal.SIGTERM, close_soon)
    keepalive = QTimer()
    keepalive.start(200)
    keepalive.timeout.connect(lambda: None)
    app.exec()
    return script.exit_code if script else 0


def _once(window: MainWindow, path: str, layer: Optional[str] = None):
    """A slot that opens ``path`` the first time a model is ready, then disconnects;
    once it opened, ``layer`` (``--layer``, which may be the file model's) is shown."""
    wb = window.workbench

    def show_layer(_path, message: str) -> None:
        wb.file_outcome.disconnect(show_layer)
        if not message and wb.layer_info(layer) is not None:
            window.model_tree.select(layer)

    def open_file(_info) -> None:
        wb.model_opened.disconnect(open_file)
        if layer:
            wb.file_outcome.connect(show_layer)
        window.files.open_given(path)  # with --data, on that data

    return open_file
