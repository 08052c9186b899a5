"""The window that :func:`mechscope.show` opens on a live model of the calling process:
the same start-up as ``main.py`` (:func:`gui.app.application`, :func:`gui.app.make_window`),
but the event loop runs only until this window closes, so a script goes on afterwards
and a notebook (``%gui qt``) is not blocked at all."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Callable, Optional

from PySide6.QtCore import QEventLoop, QTimer

from core.api import SessionAPI
from gui.app import application, make_window
from gui.main_window import MainWindow
from gui.settings import AppSettings


def show_window(session: SessionAPI, model: str, layer: str, block: bool = True,
                on_close: Optional[Callable[[], None]] = None) -> Optional[MainWindow]:
    """Open the window on ``session`` and open ``model`` at ``layer`` on its worker.

    With ``block``: return ``None`` when the window has closed. Without: return the
    window at once (the caller's event loop — ``%gui qt``, pytest-qt — runs it).
    ``on_close`` runs after the window closed and its worker thread has ended.
    """
    app = application()
    hooks = sys.excepthook, threading.excepthook
    window = make_window(session, AppSettings())
    window.workbench.layer = layer

    def closed() -> None:
        # Once: a second close (pytest-qt's, a notebook's) must not reset flags the
        # caller has changed since.
        window.closed.disconnect(closed)
        window.worker.join()  # nothing may run the caller's model after this
        # The notebook's or script's own hooks again.
        sys.excepthook, threading.excepthook = hooks
        if on_close is not None:
            on_close()

    window.closed.connect(closed)
    window.show()
    if app.platformName() != "offscreen":  # above the notebook's browser or terminal
        window.raise_()
        window.activateWindow()
    QTimer.singleShot(0, lambda: window.workbench.open_model(model))
    if not block:
        return window
    loop = QEventLoop()
    window.closed.connect(loop.quit)
    # Ctrl-C in the terminal closes the window (and returns) instead of leaving the
    # loop running; Python runs the handler only between Qt events, hence the timer.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, window.close)) \
        if main else None
    keepalive = QTimer()
    keepalive.timeout.connect(lambda: None)
    keepalive.start(200)
    try:
        loop.exec()
    finally:
        keepalive.stop()
        if main:
            signal.signal(signal.SIGINT, previous)
    window.deleteLater()
    app.processEvents()
    return None
