"""The one background pattern: superseding, cancelling, errors — deterministically."""

import threading

from core.errors import InputError
from gui.worker import Worker


def test_newer_job_supersedes_older(qtbot):
    worker = Worker()
    release = threading.Event()
    results = []
    worker.finished.connect(lambda key, value: results.append((key, value)))

    def slow(value, token=None):
        assert threading.current_thread() is not threading.main_thread()
        release.wait(10)
        token.check()
        return value

    first = worker.submit("grid", slow, "old")
    worker.submit("grid", slow, "new")
    assert first.token.cancelled
    with qtbot.waitSignal(worker.busy_changed, timeout=10_000,
                          check_params_cb=lambda busy: not busy):
        release.set()
    assert results == [("grid", "new")]
    worker.shutdown()


def test_user_errors_and_bugs_arrive_as_failed(qtbot):
    worker = Worker()
    failures = []
    worker.failed.connect(lambda key, err: failures.append((key, err)))

    def user_error(token=None):
        raise InputError("that file is not an image")

    def bug(token=None):
        raise ZeroDivisionError("oops")

    worker.submit("a", user_error)
    with qtbot.waitSignal(worker.failed, timeout=10_000):
        worker.submit("b", bug)
    qtbot.waitUntil(lambda: len(failures) == 2)
    assert str(failures[0][1]) == "that file is not an image"
    assert "ZeroDivisionError" in str(failures[1][1]) and "log" in str(failures[1][1])
    worker.shutdown()


def test_progress_reaches_gui_thread(qtbot):
    worker = Worker()
    seen = []
    worker.progress.connect(lambda key, f, text: seen.append((threading.current_thread(), f)))

    def job(token=None):
        token.report(1.0, "done")

    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.submit("p", job)
    assert seen and seen[0][0] is threading.main_thread()
    worker.shutdown()
