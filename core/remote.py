"""The session in a child process: the same methods as :class:`core.session.Session`,
run by a separate interpreter.

Why: importing torch takes ~1 s and holds the GIL, so in one process it cannot overlap
with building and painting the window. A child started first thing imports torch while
the parent imports Qt; the model is ready about when ``import torch`` alone would be
(issue #4, ``bench/bench_startup.py``). It also keeps framework work off the GUI's
interpreter entirely, and a crash inside a framework kills the child, not the window.

Protocol (one call at a time, which the GUI's single worker guarantees): the parent sends
``(method, args)``; the child answers any number of ``("progress", fraction, text)``
and then ``("ok", result)`` or ``("error", exception)``. Cancelling sets a shared event
that the child's :class:`CancelToken` checks between batches.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import threading
import traceback
from typing import Any, Optional

from core.errors import Cancelled, MechscopeError
from core.jobs import CancelToken
from core.zoo import ZOO, ZooEntry

log = logging.getLogger(__name__)
CALLS = ("open_model", "sample", "load_image", "encode_text", "capture", "evaluate",
         "head_scores", "head_importance", "lesson_start", "lesson_step", "open_lesson_model",
         "open_checkpoint", "use_dataset", "convert_drawing")
POLL_S = 0.05
SHUTDOWN_S = 3.0


class SessionProcessError(MechscopeError):
    """The compute process died or could not be reached."""


class _ChildToken(CancelToken):
    def __init__(self, conn, cancel) -> None:
        super().__init__(lambda f, t: conn.send(("progress", f, t)))
        self._cancel = cancel

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()


def _serve(conn, cancel) -> None:
    """The child's loop: import the framework at once, then answer calls until told to stop."""
    from core import runtime
    from core.session import Session

    runtime.tune_allocator()
    try:
        import core.adapters.torch_adapter  # noqa: F401 (the slow import, done up front)
    except Exception:  # reported with a user message when a model opens
        log.exception("importing the framework failed")
    session = Session()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        method, args = message
        try:
            result = ("ok", getattr(session, method)(*args, token=_ChildToken(conn, cancel)))
        except MechscopeError as exc:
            result = ("error", exc)
        except Exception as exc:  # a bug: carry the traceback text to the parent's log
            result = ("error", RuntimeError(f"{type(exc).__name__}: {exc}\n"
                                            f"{traceback.format_exc()}"))
        try:
            conn.send(result)
        except Exception as exc:  # an unpicklable result: say so instead of hanging
            conn.send(("error", RuntimeError(f"cannot send the result of {method}: {exc}")))


class RemoteSession:
    """Drop-in for :class:`core.session.Session` whose work runs in a child process.

    Start it as early as possible (before importing Qt) so torch loads in parallel.
    """

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that may own Qt threads
        self._conn, child = ctx.Pipe()
        self._cancel = ctx.Event()
        self._lock = threading.Lock()
        self._process = ctx.Process(target=_serve, args=(child, self._cancel),
                                    name="mechscope-compute", daemon=True)
        self._process.start()
        child.close()

    @staticmethod
    def available_models() -> tuple[ZooEntry, ...]:
        return tuple(ZOO.values())

    def __getattr__(self, name: str):
        if name not in CALLS:
            raise AttributeError(name)

        def call(*args: Any, token: Optional[CancelToken] = None) -> Any:
            return self._call(name, args, token)

        return call

    def _call(self, method: str, args: tuple, token: Optional[CancelToken]) -> Any:
        with self._lock:
            self._cancel.clear()
            try:
                self._conn.send((method, args))
                while True:
                    if token is not None and token.cancelled:
                        self._cancel.set()
                    if not self._conn.poll(POLL_S):
                        if not self._process.is_alive():
                            raise SessionProcessError(
                                "The compute process stopped unexpectedly "
                                f"(exit code {self._process.exitcode}); restart Mechscope.")
                        continue
                    kind, *payload = self._conn.recv()
                    if kind == "progress":
                        self._progress(token, *payload)
                        continue
                    if kind == "ok":
                        return payload[0]
                    raise payload[0]
            except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
                raise SessionProcessError(f"Lost the compute process ({exc}); "
                                          "restart Mechscope.") from exc

    def _progress(self, token: Optional[CancelToken], fraction: float, text: str) -> None:
        # Never leave the receive loop early: the child's reply must be read, or the
        # next call would get it.
        if token is None:
            return
        try:
            token.report(fraction, text)
        except Cancelled:
            self._cancel.set()

    def close(self) -> None:
        """Ask the child to stop; terminate it if it does not."""
        self._cancel.set()
        try:
            self._conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self._process.join(SHUTDOWN_S)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(SHUTDOWN_S)
        self._conn.close()
