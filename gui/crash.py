"""Unexpected exceptions: logged with their traceback to the log file, shown politely
in the window, and the app keeps running."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Callable, Optional

log = logging.getLogger("mechscope.crash")


def log_dir() -> Path:
    """Where the log file goes: the user's data directory (XDG on Linux)."""
    from PySide6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    path = Path(base or Path.home() / ".mechscope")
    path.mkdir(parents=True, exist_ok=True)
    return path


def setup_logging(level: int = logging.INFO) -> Path:
    """One file handler for the whole app; returns the log file's path."""
    path = log_dir() / "mechscope.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return path


def install_excepthook(show: Optional[Callable[[str], None]] = None) -> None:
    """Route uncaught exceptions (e.g. in a slot) to the log and to ``show(message)``."""

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error("uncaught exception:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        if show is not None:
            show(f"Something went wrong inside Mechscope ({exc_type.__name__}: {exc}). "
                 "The details are in the log file; the window keeps working.")

    sys.excepthook = hook
