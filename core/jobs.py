"""CancelToken: cooperative cancellation and progress for long core calls.

Plain Python (a ``threading.Event``) so notebooks and tests can use it without Qt.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from core.errors import Cancelled

ProgressCallback = Callable[[float, str], None]


class CancelToken:
    """Checked by long core functions between batches.

    Parameters
    ----------
    on_progress : callable(fraction, text), optional
        Called from the thread doing the work; ``fraction`` is in [0, 1].
    """

    def __init__(self, on_progress: Optional[ProgressCallback] = None) -> None:
        self._event = threading.Event()
        self._on_progress = on_progress

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if :meth:`cancel` was called."""
        if self._event.is_set():
            raise Cancelled()

    def report(self, fraction: float, text: str = "") -> None:
        """Check for cancellation, then forward progress to the callback."""
        self.check()
        if self._on_progress is not None:
            self._on_progress(min(max(fraction, 0.0), 1.0), text)


def check(token: Optional[CancelToken]) -> None:
    """``token.check()`` that accepts ``None`` (no cancellation wanted)."""
    if token is not None:
        token.check()


def report(token: Optional[CancelToken], fraction: float, text: str = "") -> None:
    """``token.report()`` that accepts ``None``."""
    if token is not None:
        token.report(fraction, text)
