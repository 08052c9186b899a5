"""The one pattern for background work.

One thread owns the model: a single-thread executor runs session calls one after
another. Results come back as queued signals on the GUI thread; a newer job for the same
key cancels the older one, and results of superseded jobs are dropped.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

from core.errors import Cancelled, MechscopeError
from core.jobs import CancelToken
from gui import crash

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.1  # ~10 Hz is smooth enough and never floods the event loop


class UnexpectedError(MechscopeError):
    """A bug, not a user error: logged with its traceback, shown politely."""


@dataclass
class Job:
    key: str
    generation: int
    token: CancelToken | None = None
    future: Future | None = None


class Worker(QObject):
    """Runs ``fn(*args, token=...)`` off the GUI thread, one job at a time.

    Signals (all delivered on the GUI thread):
    ``finished(key, result)``, ``failed(key, MechscopeError)``, ``cancelled(key)``,
    ``progress(key, fraction, text)``, ``busy_changed(bool)``.
    """

    finished = Signal(str, object)
    failed = Signal(str, object)
    cancelled = Signal(str)
    progress = Signal(str, float, str)
    busy_changed = Signal(bool)
    # Emitted from the worker thread; Qt queues it to the GUI thread.
    _done = Signal(object, str, object)
    _progress = Signal(object, float, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mechscope-worker")
        self._current: dict[str, Job] = {}
        self._generation: dict[str, int] = {}
        self._pending = 0
        self._closed = False
        self._done.connect(self._on_done)
        self._progress.connect(self._on_progress)

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def submit(self, key: str, fn: Callable[..., Any], *args: Any) -> Job:
        """Run ``fn(*args, token=token)`` on the worker; supersede any job with ``key``."""
        if self._closed:
            raise RuntimeError("The worker has been shut down.")
        old = self._current.get(key)
        if old is not None:
            old.token.cancel()
        generation = self._generation.get(key, 0) + 1
        self._generation[key] = generation
        job = Job(key, generation)
        job.token = CancelToken(self._throttled(job))
        self._current[key] = job
        self._set_pending(self._pending + 1)
        job.future = self._pool.submit(self._run, job, fn, args)
        return job

    def cancel(self, key: str | None = None) -> None:
        """Cancel the job for ``key``, or every job; they end at their next check."""
        for k, job in list(self._current.items()):
            if key is None or k == key:
                job.token.cancel()

    def shutdown(self) -> None:
        """Cancel everything and wait for the running job to reach a check."""
        self._closed = True
        self.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _throttled(self, job: Job) -> Callable[[float, str], None]:
        last = [0.0]

        def on_progress(fraction: float, text: str) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                last[0] = now
                self._progress.emit(job, fraction, text)

        return on_progress

    def _run(self, job: Job, fn: Callable[..., Any], args: tuple) -> None:
        # Runs on the worker thread: never touch widgets here, only emit.
        try:
            job.token.check()
            outcome: Any = ("ok", fn(*args, token=job.token))
        except Cancelled:
            outcome = ("cancelled", None)
        except MechscopeError as exc:
            outcome = ("failed", exc)
        except Exception as exc:  # a bug: keep the app alive, log the traceback
            log.exception("unexpected error in background job %r", job.key)
            outcome = ("failed", UnexpectedError(crash.polite(type(exc), exc)))
        self._done.emit(job, outcome[0], outcome[1])

    @Slot(object, str, object)
    def _on_done(self, job: Job, status: str, value: object) -> None:
        self._set_pending(self._pending - 1)
        stale = self._generation.get(job.key) != job.generation
        if self._current.get(job.key) is job:
            del self._current[job.key]
        if stale or status == "cancelled":
            # A superseded job's result would overwrite a newer one: drop it.
            if not stale:
                self.cancelled.emit(job.key)
            return
        if status == "ok":
            self.finished.emit(job.key, value)
        else:
            self.failed.emit(job.key, value)

    @Slot(object, float, str)
    def _on_progress(self, job: Job, fraction: float, text: str) -> None:
        if self._generation.get(job.key) == job.generation and not job.token.cancelled:
            self.progress.emit(job.key, fraction, text)

    def _set_pending(self, n: int) -> None:
        was = self.busy
        self._pending = n
        if self.busy != was:
            self.busy_changed.emit(self.busy)
