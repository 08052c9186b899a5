"""The session in a child process: :class:`core.api.SessionAPI` forwarded, call by call,
to a separate interpreter — what users run.

Why a child: importing torch takes ~1 s and holds the GIL, so in one process it cannot
overlap with building and painting the window. A child started first thing imports
torch while the parent imports Qt (issue #4, ``bench/bench_startup.py``). It keeps
framework work off the window's interpreter, a crash inside a framework kills the
child, not the window — and a framework call that never returns can be ended: the
watchdog (issue #10) kills a child that does not answer a cancel within
``WATCHDOG_S``, starts a fresh one and reopens what was open.

Protocol (one call at a time, which the GUI's single worker guarantees): the parent sends
``(method, args, kwargs)``; the child answers any number of ``("progress", fraction,
text)`` (throttled in the child, before the pipe) and then ``("ok", result)`` or
``("error", exception)``. Log records travel on a queue to the parent's handlers.
Cancelling sets a shared event that the child's token checks between batches.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing as mp
import os
import threading
import time
import traceback
from typing import Any, Callable, Optional, Sequence

import numpy as np

from core.ablation import Ablation
from core.analysis.attention import HeadScores
from core.analysis.evaluate import EvalResult, Sweep
from core.api import Capture, ModelInfo, OpenedFile, Prediction, Sample, SessionAPI
from core.errors import Cancelled, MechscopeError
from core.files.images import ConvertedImage
from core.jobs import CancelToken
from core.lessons.snapshot import Snapshot
from core.lm_values import LmTask, LogitLens, PatchGrid
from core.unit_values import FeatureVis, LayerMap, ProbeReport, UnitPage
from core.zoo import ZOO, ZooEntry

log = logging.getLogger(__name__)
POLL_S = 0.02
#: How long a cancelled call may take to answer before its process is replaced.
WATCHDOG_S = 0.75
#: A cancelled call still running after this long may be stuck: a spare process starts
#: importing torch now, so a replacement is ready sooner (cooperative cancels answer
#: well before it, and cost no spare).
SPARE_AFTER_S = 0.25
SHUTDOWN_S = 1.0
PROGRESS_INTERVAL_S = 0.1
#: Calls after which the child's state is what they made it; replayed after a restart.
_STATE_CALLS = ("open_model", "open_checkpoint", "open_file", "open_lesson_model")


class SessionProcessError(MechscopeError):
    """The compute process died or could not be reached."""


class ComputeRestarted(Cancelled):
    """A job did not stop when cancelled, so its process was replaced."""


class _ChildToken(CancelToken):
    """The child's side of a call's token: the parent's cancel event, and progress
    throttled here so a fast loop cannot flood the pipe."""

    def __init__(self, conn, cancel) -> None:
        super().__init__(self._send)
        self._conn, self._cancel, self._last = conn, cancel, 0.0

    def _send(self, fraction: float, text: str) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL_S or fraction >= 1.0:
            self._last = now
            self._conn.send(("progress", fraction, text))

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()


def _forward_logs(queue) -> None:
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(logging.INFO)


def _serve(conn, cancel, logs, serves: str) -> None:
    """The child's loop: import the framework at once, then answer calls until told to
    stop (or until the parent's end of the pipe closes)."""
    import importlib

    _forward_logs(logs)
    from core import runtime

    runtime.die_with_parent()  # an app killed from outside takes its compute with it
    module, _, name = serves.partition(":")
    Session = getattr(importlib.import_module(module), name)  # noqa: N806 (a class)
    runtime.tune_allocator()
    try:
        import core.adapters.torch_adapter  # noqa: F401 (the slow import, done up front)
    except Exception:  # reported with a user message when a model opens
        log.exception("importing the framework failed")
    session = Session()
    log.info("compute process %d ready, serving %s", os.getpid(), serves)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        method, args, kwargs = message
        try:
            result = ("ok", getattr(session, method)(*args, **kwargs,
                                                     token=_ChildToken(conn, cancel)))
        except MechscopeError as exc:
            result = ("error", exc)
        except Exception as exc:  # a bug: log it here, say so there
            log.exception("%s failed in the compute process", method)
            result = ("error", RuntimeError(f"{type(exc).__name__}: {exc}\n"
                                            f"{traceback.format_exc()}"))
        try:
            conn.send(result)
        except Exception as exc:  # an unpicklable result: say so instead of hanging
            log.exception("cannot send the result of %s", method)
            conn.send(("error", RuntimeError(f"cannot send the result of {method}: {exc}")))


class _Forward(logging.Handler):
    """Hands a record from the child to the parent's logger of the same name."""

    def emit(self, record: logging.LogRecord) -> None:
        record.processName = "compute"
        logging.getLogger(record.name).handle(record)


class _Child:
    """One compute process with its pipe, cancel event and log queue."""

    def __init__(self, serves: str) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that may own Qt threads
        self.conn, child = ctx.Pipe()
        self.cancel = ctx.Event()
        self.logs = ctx.Queue()
        # Not a daemon: the child starts sandbox processes of its own (the file probe,
        # the trial run), which daemonic processes may not. The parent ends it in
        # close(); if the parent dies, the child's recv() ends with EOFError.
        self.process = ctx.Process(target=_serve, args=(child, self.cancel, self.logs, serves),
                                   name="mechscope-compute", daemon=False)
        self.process.start()
        child.close()
        self.listener = logging.handlers.QueueListener(self.logs, _Forward())
        self.listener.start()

    def end(self, wait_s: float, polite: bool = True) -> None:
        """Ask the child to stop (unless it is busy: ``polite=False``), then terminate
        and kill it if it does not."""
        self.cancel.set()
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        asks = (lambda: None,) if polite else ()
        for stop in (*asks, self.process.terminate, self.process.kill):
            stop()
            self.process.join(wait_s)
            if not self.process.is_alive():
                break
        self.conn.close()
        try:
            self.listener.stop()
        except Exception:  # a queue broken by the kill: nothing left to forward
            log.debug("log listener stopped uncleanly", exc_info=True)


class RemoteSession(SessionAPI):
    """:class:`core.api.SessionAPI` whose work runs in a child process.

    Start it as early as possible (before importing Qt) so torch loads in parallel.
    ``on_restart(text)`` is told, from the worker thread, when the watchdog starts
    replacing the process (the call then raises :class:`ComputeRestarted`).
    ``serves`` names the session class the child runs ("module:Class"), so tests can
    serve a session whose framework call never returns.
    """

    def __init__(self, on_restart: Optional[Callable[[str], None]] = None,
                 serves: str = "core.session:Session") -> None:
        self._serves = serves
        self._lock = threading.Lock()
        self._closed = False
        self._replaying = False
        self._journal: list[tuple[str, tuple, dict]] = []
        self._lesson: list[tuple[str, tuple, dict]] = []
        self.on_restart = on_restart
        self.restarts = 0
        self._spare: Optional[_Child] = None
        self._child = _Child(self._serves)

    # --- SessionAPI ------------------------------------------------------------------
    def available_models(self) -> tuple[ZooEntry, ...]:
        return tuple(ZOO.values())  # static: needs no framework, so no round trip

    def open_model(self, name: str, token: Optional[CancelToken] = None) -> ModelInfo:
        return self._call("open_model", (name,), {}, token)

    def open_file(self, path: str, token: Optional[CancelToken] = None) -> OpenedFile:
        return self._call("open_file", (path,), {}, token)

    def open_checkpoint(self, path: str, trusted_sha256: Optional[str] = None,
                        spec: Optional[object] = None, data: Optional[str] = None,
                        token: Optional[CancelToken] = None) -> ModelInfo:
        return self._call("open_checkpoint", (path, trusted_sha256, spec, data), {}, token)

    def use_dataset(self, path: str, token: Optional[CancelToken] = None) -> ModelInfo:
        return self._call("use_dataset", (path,), {}, token)

    def sample(self, index: int, token: Optional[CancelToken] = None) -> Sample:
        return self._call("sample", (index,), {}, token)

    def load_image(self, path: str, token: Optional[CancelToken] = None) -> ConvertedImage:
        return self._call("load_image", (path,), {}, token)

    def convert_drawing(self, gray: np.ndarray,
                        token: Optional[CancelToken] = None) -> ConvertedImage:
        return self._call("convert_drawing", (gray,), {}, token)

    def encode_text(self, text: str, token: Optional[CancelToken] = None) -> np.ndarray:
        return self._call("encode_text", (text,), {}, token)

    def capture(self, model_input: np.ndarray, sites: Sequence[str],
                ablations: Sequence[Ablation] = (),
                token: Optional[CancelToken] = None) -> Capture:
        return self._call("capture", (model_input, sites, tuple(ablations)), {}, token)

    def evaluate(self, ablations: Sequence[Ablation] = (),
                 token: Optional[CancelToken] = None) -> EvalResult:
        return self._call("evaluate", (tuple(ablations),), {}, token)

    def head_scores(self, token: Optional[CancelToken] = None) -> HeadScores:
        return self._call("head_scores", (), {}, token)

    def head_importance(self, mode: str = "zero",
                        token: Optional[CancelToken] = None) -> tuple[Sweep, ...]:
        return self._call("head_importance", (mode,), {}, token)

    def unit_page(self, site: str, unit: int, k: int = 16,
                  token: Optional[CancelToken] = None) -> UnitPage:
        return self._call("unit_page", (site, unit, k), {}, token)

    def unit_importance(self, site: str, mode: str = "zero",
                        token: Optional[CancelToken] = None) -> Sweep:
        return self._call("unit_importance", (site, mode), {}, token)

    def probes(self, token: Optional[CancelToken] = None) -> tuple[ProbeReport, ...]:
        return self._call("probes", (), {}, token)

    def layer_map(self, site: str, token: Optional[CancelToken] = None) -> LayerMap:
        return self._call("layer_map", (site,), {}, token)

    def feature_visualisation(self, site: str, unit: int, steps: int = 256,
                              token: Optional[CancelToken] = None) -> FeatureVis:
        return self._call("feature_visualisation", (site, unit, steps), {}, token)

    def logit_lens(self, model_input: np.ndarray, target: Optional[int] = None,
                   ablations: Sequence[Ablation] = (),
                   token: Optional[CancelToken] = None) -> LogitLens:
        return self._call("logit_lens", (model_input, target, tuple(ablations)), {}, token)

    def activation_patching(self, clean: np.ndarray, corrupt: np.ndarray,
                            clean_answer: int, corrupt_answer: int, kind: str = "resid",
                            rows: Optional[Sequence[int]] = None,
                            token: Optional[CancelToken] = None) -> PatchGrid:
        return self._call("activation_patching", (clean, corrupt, clean_answer,
                                                  corrupt_answer, kind, rows), {}, token)

    def patch_cell(self, clean: np.ndarray, corrupt: np.ndarray, kind: str, row: int,
                   column: int, token: Optional[CancelToken] = None) -> Prediction:
        return self._call("patch_cell", (clean, corrupt, kind, row, column), {}, token)

    def lm_tasks(self, token: Optional[CancelToken] = None) -> tuple[LmTask, ...]:
        return self._call("lm_tasks", (), {}, token)

    def use_task(self, name: str, token: Optional[CancelToken] = None) -> ModelInfo:
        return self._call("use_task", (name,), {}, token)

    def lesson_start(self, trainer: str, seed: int = 0, lr: Optional[float] = None,
                     token: Optional[CancelToken] = None) -> Snapshot:
        return self._call("lesson_start", (trainer, seed, lr), {}, token)

    def lesson_step(self, n: int = 1, lr: Optional[float] = None, sample: int = 0,
                    token: Optional[CancelToken] = None) -> Snapshot:
        return self._call("lesson_step", (n, lr, sample), {}, token)

    def open_lesson_model(self, token: Optional[CancelToken] = None) -> ModelInfo:
        return self._call("open_lesson_model", (), {}, token)

    # --- the pipe --------------------------------------------------------------------
    @property
    def pid(self) -> Optional[int]:
        return self._child.process.pid

    def _call(self, method: str, args: tuple, kwargs: dict,
              token: Optional[CancelToken]) -> Any:
        with self._lock:
            if self._closed:
                raise SessionProcessError("Mechscope is closing.")
            result = self._exchange(method, args, kwargs, token)
            self._remember(method, args, kwargs, result)
            return result

    def _exchange(self, method: str, args: tuple, kwargs: dict,
                  token: Optional[CancelToken]) -> Any:
        child = self._child
        child.cancel.clear()
        cancelled_at = None
        try:
            child.conn.send((method, args, kwargs))
            while True:
                if token is not None and token.cancelled and cancelled_at is None:
                    child.cancel.set()
                    cancelled_at = time.monotonic()
                waited = 0.0 if cancelled_at is None else time.monotonic() - cancelled_at
                if waited > SPARE_AFTER_S and self._spare is None and not self._replaying:
                    self._spare = _Child(self._serves)
                if waited > WATCHDOG_S:
                    self._restart(method)
                if not child.conn.poll(POLL_S):
                    if not child.process.is_alive():
                        return self._died(method)
                    continue
                kind, *payload = child.conn.recv()
                if kind == "progress":
                    self._progress(token, *payload)
                    continue
                if kind == "ok":
                    return payload[0]
                raise payload[0]
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as exc:
            if self._closed:
                raise SessionProcessError("Mechscope is closing.") from exc
            return self._died(method)

    def _progress(self, token: Optional[CancelToken], fraction: float, text: str) -> None:
        # Never leave the receive loop early: the child's reply must be read, or the
        # next call would get it.
        if token is None:
            return
        try:
            token.report(fraction, text)
        except Cancelled:
            self._child.cancel.set()

    def _remember(self, method: str, args: tuple, kwargs: dict, result: Any) -> None:
        """Keep the calls that made the child's current state, to replay after a
        restart: the last model opened and the data used with it; the lesson."""
        call = (method, args, kwargs)
        if method == "open_file" and result.what == "image":
            return
        if method in _STATE_CALLS:
            self._journal = [call]
        elif method in ("use_dataset", "use_task"):  # the data the model is evaluated on
            self._journal = self._journal[:1] + [call]
        elif method == "lesson_start":
            self._lesson = [call]
        elif method == "lesson_step":
            self._lesson.append(call)

    def _restart(self, method: str) -> None:
        """Replace a child that did not answer a cancel; reopen what was open."""
        log.warning("%s did not stop within %.2f s of Cancel: restarting the compute "
                    "process", method, WATCHDOG_S)
        if self.on_restart is not None:
            self.on_restart("The job did not stop when cancelled: restarting Mechscope's "
                            "compute process…")
        reopened = self._replace()
        raise ComputeRestarted(
            "The job did not stop when cancelled, so Mechscope restarted its compute "
            f"process{' and reopened the model' if reopened else ''}.")

    def _died(self, method: str):
        code = self._child.process.exitcode
        log.error("the compute process ended during %s (exit code %s)", method, code)
        reopened = self._replace()
        raise SessionProcessError(
            f"The compute process stopped unexpectedly (exit code {code}); Mechscope "
            f"started a new one{' and reopened the model' if reopened else ''}.")

    def _replace(self) -> bool:
        """A fresh child with the journal replayed; True if a model was reopened."""
        if self._closed or self._replaying:  # no restart while closing or replaying
            raise SessionProcessError("The compute process stopped.")
        self._child.end(0.2, polite=False)
        self._child, self._spare = self._spare or _Child(self._serves), None
        self.restarts += 1
        self._replaying = True
        try:
            for name, args, kwargs in self._journal + self._lesson:
                self._exchange(name, args, kwargs, None)
        except MechscopeError:
            log.exception("could not reopen what was open after a restart")
            self._journal, self._lesson = [], []
            return False
        finally:
            self._replaying = False
        return bool(self._journal)

    def close(self) -> None:
        """End the child, even mid-job: Quit must finish within a few seconds."""
        busy = self._lock.locked()  # a job in flight will not read a polite "stop"
        self._closed = True
        for child in filter(None, (self._child, self._spare)):
            child.end(SHUTDOWN_S, polite=not busy and child is self._child)
