"""The one pattern for background work: callbacks to the submitter.

One thread owns the calls: a single-thread executor runs session calls one after
another (the session may be in-process or the compute process). The result, the error
or the cancel of a job is delivered on the GUI thread to the callbacks of the call that
asked, and to no one else (Orange3's widget task contract). A newer job for the same key
cancels the older one, and a superseded job's outcome is dropped before any callback
runs. Progress is throttled (~10 Hz) on the worker thread, before it reaches Qt.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from PySide6.QtCore import QObject, Signal, Slot

from core.errors import Cancelled, MechscopeError
from core.jobs import CancelToken
from gui import crash

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.1  # ~10 Hz is smooth enough and never floods the event loop

Done = Callable[[Any], None]
Failed = Callable[[MechscopeError], None]
Progress = Callable[[float, str], None]


class UnexpectedError(MechscopeError):
    """A bug, not a user error: logged with its traceback, shown politely."""


@dataclass
class Job:
    """One submitted call and where its outcome goes."""

    key: str
    generation: int
    on_done: Done
    on_error: Optional[Failed] = None
    on_progress: Optional[Progress] = None
    on_cancel: Optional[Callable[[], None]] = None
    token: CancelToken = field(default_factory=CancelToken)
    future: Optional[Future] = None


class Worker(QObject):
    """Runs ``fn(*args, token=...)`` off the GUI thread, one job at a time.

    Signals, for the window's status bar only (never results):
    ``activity(key, fraction, text)``, ``busy_changed(bool)`` and ``notice(text)`` (the
    session had to do something the user should know, e.g. restart its process).
    """

    activity = Signal(str, float, str)
    busy_changed = Signal(bool)
    notice = Signal(str)
    # Emitted from the worker thread; Qt queues them to the GUI thread.
    _done = Signal(object, str, object)
    _progress = Signal(object, float, str)

    def __init__(self, parent: QObject | None = None,
                 on_unhandled_error: Optional[Failed] = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mechscope-worker")
        self._current: dict[str, Job] = {}
        self._generation: dict[str, int] = {}
        self._pending = 0
        self._closed = False
        #: Where errors of a job submitted without ``on_error`` go (the message bar).
        self.on_unhandled_error = on_unhandled_error
        self._done.connect(self._on_done)
        self._progress.connect(self._on_progress)

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def submit(self, key: str, fn: Callable[..., Any], *args: Any, on_done: Done,
               on_error: Optional[Failed] = None, on_progress: Optional[Progress] = None,
               on_cancel: Optional[Callable[[], None]] = None) -> Job:
        """Run ``fn(*args, token=token)`` on the worker; supersede any job with ``key``.

        Exactly one of ``on_done(result)``, ``on_error(error)`` or ``on_cancel()`` is
        called on the GUI thread — unless a newer job with the same key superseded this
        one, in which case nothing is.
        """
        if self._closed:
            raise RuntimeError("The worker has been shut down.")
        old = self._current.get(key)
        if old is not None:
            old.token.cancel()
        generation = self._generation.get(key, 0) + 1
        self._generation[key] = generation
        job = Job(key, generation, on_done, on_error, on_progress, on_cancel)
        job.token = CancelToken(self._throttled(job))
        self._current[key] = job
        self._set_pending(self._pending + 1)
        job.future = self._pool.submit(self._run, job, fn, args)
        return job

    def cancel(self, key: str | None = None) -> None:
        """Cancel the job for ``key``, or every job; they end at their next check (or,
        in the compute process, when its watchdog replaces it)."""
        for k, job in list(self._current.items()):
            if key is None or k == key:
                job.token.cancel()

    def shutdown(self) -> None:
        """Cancel everything without waiting: the session's close ends a job that does
        not stop, and the thread then finishes on its own."""
        self._closed = True
        self.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def join(self) -> None:
        """After :meth:`shutdown`, wait until the job in flight has ended: a live model
        of the caller's (``mechscope.show``) is handed back only when nothing runs it."""
        self._pool.shutdown(wait=True)

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
            outcome: tuple[str, Any] = ("ok", fn(*args, token=job.token))
        except Cancelled as exc:
            outcome = ("cancelled", exc)
        except MechscopeError as exc:
            outcome = ("failed", exc)
        except Exception as exc:  # a bug: keep the app alive, log the traceback
            log.exception("unexpected error in background job %r", job.key)
            outcome = ("failed", UnexpectedError(crash.polite(type(exc), exc)))
        if not self._closed:
            self._done.emit(job, *outcome)

    @Slot(object, str, object)
    def _on_done(self, job: Job, status: str, value: object) -> None:
        self._set_pending(self._pending - 1)
        if self._current.get(job.key) is job:
            del self._current[job.key]
        if status == "cancelled" and str(value) != str(Cancelled()):
            self.notice.emit(str(value))  # e.g. the compute process was replaced
        if self._generation.get(job.key) != job.generation:
            return  # superseded: a newer job with this key owns the view now
        if status == "ok":
            job.on_done(value)
        elif status == "cancelled":
            if job.on_cancel is not None:
                job.on_cancel()
        elif job.on_error is not None:
            job.on_error(value)
        elif self.on_unhandled_error is not None:
            self.on_unhandled_error(value)
        else:
            log.error("job %r failed and nobody listens: %s", job.key, value)

    @Slot(object, float, str)
    def _on_progress(self, job: Job, fraction: float, text: str) -> None:
        if self._generation.get(job.key) != job.generation or job.token.cancelled:
            return
        self.activity.emit(job.key, fraction, text)
        if job.on_progress is not None:
            job.on_progress(fraction, text)

    def _set_pending(self, n: int) -> None:
        was = self.busy
        self._pending = n
        if self.busy != was:
            self.busy_changed.emit(self.busy)
