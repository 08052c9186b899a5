"""The one background pattern: callbacks reach only the submitter; superseding,
cancelling and errors — deterministically (fakes block on events the test holds)."""

import threading

from core.errors import Cancelled, InputError
from gui.worker import Worker


def _record(log, tag):
    return lambda *value: log.append((tag, *value))


def test_newer_job_supersedes_older(qtbot):
    worker = Worker()
    release = threading.Event()
    results = []

    def slow(value, token=None):
        assert threading.current_thread() is not threading.main_thread()
        release.wait(10)
        token.check()
        return value

    first = worker.submit("grid", slow, "old", on_done=_record(results, "first"),
                          on_cancel=_record(results, "first-cancel"))
    worker.submit("grid", slow, "new", on_done=_record(results, "second"))
    assert first.token.cancelled
    with qtbot.waitSignal(worker.busy_changed, timeout=10_000,
                          check_params_cb=lambda busy: not busy):
        release.set()
    # The superseded job's outcome is dropped before any callback: not even a cancel.
    assert results == [("second", "new")]
    worker.shutdown()


def test_result_error_and_cancel_reach_only_their_submitter(qtbot):
    """Two consumers under different keys: each sees its own outcome, never the other's."""
    worker = Worker()
    release = threading.Event()
    a, b = [], []

    def ok(token=None):
        return "a-result"

    def fails(token=None):
        raise InputError("b went wrong")

    def blocks(token=None):
        release.wait(10)
        token.check()

    worker.submit("a", ok, on_done=_record(a, "done"), on_error=_record(a, "error"),
                  on_cancel=_record(a, "cancel"))
    worker.submit("b", fails, on_done=_record(b, "done"), on_error=_record(b, "error"),
                  on_cancel=_record(b, "cancel"))
    qtbot.waitUntil(lambda: bool(a and b), timeout=10_000)
    assert a == [("done", "a-result")]
    assert [(tag, str(err)) for tag, err in b] == [("error", "b went wrong")]
    worker.submit("b", blocks, on_done=_record(b, "done"), on_error=_record(b, "error"),
                  on_cancel=_record(b, "cancel"))
    worker.cancel("b")
    release.set()
    qtbot.waitUntil(lambda: len(b) == 2, timeout=10_000)
    assert b[1] == ("cancel",)
    assert a == [("done", "a-result")]  # nothing of b's reached a
    worker.shutdown()


def test_user_errors_and_bugs_arrive_at_on_error(qtbot):
    worker = Worker()
    failures = []

    def user_error(token=None):
        raise InputError("that file is not an image")

    def bug(token=None):
        raise ZeroDivisionError("oops")

    worker.submit("a", user_error, on_done=print, on_error=failures.append)
    worker.submit("b", bug, on_done=print, on_error=failures.append)
    qtbot.waitUntil(lambda: len(failures) == 2, timeout=10_000)
    assert str(failures[0]) == "that file is not an image"
    assert "ZeroDivisionError" in str(failures[1]) and "log" in str(failures[1])
    worker.shutdown()


def test_error_without_a_handler_goes_to_the_fallback(qtbot):
    seen = []
    worker = Worker(on_unhandled_error=seen.append)

    def user_error(token=None):
        raise InputError("nobody asked for this one")

    worker.submit("a", user_error, on_done=print)
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    assert str(seen[0]) == "nobody asked for this one"
    worker.shutdown()


def test_progress_reaches_the_submitter_on_the_gui_thread(qtbot):
    worker = Worker()
    seen, done = [], []

    def job(token=None):
        token.report(1.0, "done")

    worker.submit("p", job, on_done=done.append,
                  on_progress=lambda f, text: seen.append((threading.current_thread(), f)))
    qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    assert seen and seen[0][0] is threading.main_thread()
    worker.shutdown()


def test_a_cancel_with_a_reason_is_a_notice(qtbot):
    """When the compute process had to be replaced, the user is told (not the job)."""
    worker = Worker()
    cancels = []

    def replaced(token=None):
        raise Cancelled("Mechscope restarted its compute process.")

    with qtbot.waitSignal(worker.notice, timeout=10_000) as notice:
        worker.submit("a", replaced, on_done=print, on_cancel=lambda: cancels.append(1))
    assert "restarted" in notice.args[0]
    qtbot.waitUntil(lambda: bool(cancels), timeout=10_000)
    worker.shutdown()
