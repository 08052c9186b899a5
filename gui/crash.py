"""Unexpected exceptions — in a slot, a worker or any thread — are logged with their
traceback to a file in the user's data directory and shown in a short dialog; the app
keeps running."""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject, QStandardPaths, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger("mechscope.crash")
_log_file: Optional[Path] = None
_handler: Optional[logging.Handler] = None


def log_dir() -> Path:
    """Where the log file goes: the user's data directory (XDG on Linux)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    path = Path(base) if base else Path.home() / ".mechscope"
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup_logging(level: int = logging.INFO) -> Path:
    """One file handler for the whole app (set up again: replaced, not added); returns
    the log file's path."""
    global _log_file, _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
        _handler.close()
    _log_file = log_dir() / "mechscope.log"
    _handler = logging.FileHandler(_log_file, encoding="utf-8")
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(_handler)
    root.setLevel(level)
    return _log_file


def log_file() -> str:
    return str(_log_file) if _log_file else "the log file"


def polite(exc_type: type, exc: BaseException) -> str:
    return (f"Something went wrong inside Mechscope ({exc_type.__name__}: {exc}). "
            f"The details are in {log_file()}; the window keeps working.")


def install_excepthook(show: Optional[Callable[[str], None]] = None) -> None:
    """Route uncaught exceptions of the main thread (e.g. in a slot) and of any other
    thread to the log and to ``show(message)``.

    ``show`` must be safe to call from any thread: :class:`CrashDialog.report` is.
    """

    def report(exc_type, exc, tb) -> None:
        log.error("uncaught exception:\n%s",
                  "".join(traceback.format_exception(exc_type, exc, tb)))
        if show is not None:
            show(polite(exc_type, exc))

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        report(exc_type, exc, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        report(args.exc_type, args.exc_value, args.exc_traceback)

    sys.excepthook = hook
    threading.excepthook = thread_hook


class CrashDialog(QObject):
    """Shows unexpected errors in a non-modal message box, one at a time, on the GUI
    thread whatever thread reported them."""

    shown = Signal(str)
    _report = Signal(str)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self.box: Optional[QMessageBox] = None
        self._report.connect(self._on_report)

    def report(self, text: str) -> None:
        """Thread-safe: queue ``text`` to the GUI thread."""
        self._report.emit(text)

    @Slot(str)
    def _on_report(self, text: str) -> None:
        if self.box is None:
            self.box = QMessageBox(QMessageBox.Icon.Warning, "Mechscope hit a problem", "",
                                   QMessageBox.StandardButton.Ok, self._parent)
        self.box.setText(text)
        self.box.open()  # non-blocking: the window stays usable behind it
        self.shown.emit(text)
