"""The compute process as users run it: a call that never returns is ended by the
watchdog, which starts a fresh process and reopens what was open (issue #10); its log
records reach the app's log; Quit ends it even mid-job."""

import logging
import threading
import time

import pytest

from core.ablation import Ablation
from core.errors import Cancelled
from core.jobs import CancelToken
from core.remote import WATCHDOG_S, ComputeRestarted, RemoteSession


@pytest.fixture
def hanging():
    remote = RemoteSession(serves="tests.fakes.hanging_session:HangingSession")
    remote.open_model("digits_cnn")
    yield remote
    remote.close()


def _cancel_after(token: CancelToken, seconds: float) -> None:
    threading.Timer(seconds, token.cancel).start()


def test_a_call_that_never_returns_is_replaced_and_the_model_reopened(hanging):
    first = hanging.pid
    notices = []
    hanging.on_restart = notices.append
    token = CancelToken()
    _cancel_after(token, 0.3)
    with pytest.raises(ComputeRestarted, match="restarted its compute process and "
                                              "reopened the model"):
        hanging.evaluate((Ablation("conv1", (1,)),), token=token)
    assert hanging.pid != first and hanging.restarts == 1
    assert notices and "restarting" in notices[0]
    # The new process has the model open again: no open_model needed.
    assert hanging.evaluate().score > 0.95
    assert hanging.sample(3).model_input.shape == (1, 16, 16)


def test_a_cooperative_cancel_does_not_restart(remote):
    # The shared compute process (opening is not what HangingSession changes).
    token = CancelToken(lambda f, t: token.cancel())
    with pytest.raises(Cancelled) as raised:
        remote.open_model("digits_cnn", token=token)
    assert not isinstance(raised.value, ComputeRestarted)
    assert remote.restarts == 0


def test_no_sandbox_child_outlives_a_replaced_process(hanging, tmp_path):
    """A trial run stuck in a native call dies with the compute process the watchdog
    ends (it was left spinning at 100 % CPU, owned by init)."""
    from tests.hostile.onnx_traps import endless_loop

    path = endless_loop(tmp_path / "endless.onnx")
    old, token, stuck = hanging.pid, CancelToken(), []

    def cancel() -> None:  # inside the trial run: note its process, then cancel
        stuck.extend(_children(old))
        token.cancel()

    threading.Timer(1.5, cancel).start()
    with pytest.raises(ComputeRestarted):
        hanging.open_file(str(path), token=token)
    assert stuck, "the trial run should have been running"
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in stuck) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in stuck if _alive(pid)]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_close_mid_job_ends_the_process(hanging):
    worker = threading.Thread(target=lambda: _swallow(
        lambda: hanging.evaluate((Ablation("conv1", (1,)),))))
    worker.start()
    time.sleep(0.5)  # let the call reach the hanging framework call
    process = hanging._child.process
    hanging.close()
    worker.join(5)
    assert not worker.is_alive() and not process.is_alive()


def _swallow(fn) -> None:
    try:
        fn()
    except Exception:  # the call ends with SessionProcessError when the app closes
        pass


def test_log_records_of_the_compute_process_reach_the_app_log(tmp_path):
    path = tmp_path / "app.log"
    handler = logging.FileHandler(path)
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    remote = RemoteSession()
    try:
        remote.open_model("digits_cnn")
        pid = remote.pid
    finally:
        remote.close()
        root.removeHandler(handler)
        root.setLevel(old)
        handler.close()
    assert f"compute process {pid} ready" in path.read_text()


def test_watchdog_bound_is_at_most_a_second():
    assert WATCHDOG_S <= 1.0


def test_a_cancelled_data_load_installs_nothing(tmp_path, remote):
    """A big file of the user's: Cancel during the load leaves the data in use as it was
    (in the compute process the other tests share, which has the CNN's own data open)."""
    import numpy as np

    path = tmp_path / "big.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((200_000, 1, 16, 16), dtype=np.float32),
             y=rng.integers(0, 10, 200_000))
    seen = []
    token = CancelToken(lambda f, text: (seen.append(text), token.cancel()))
    with pytest.raises(Cancelled):
        remote.use_dataset(str(path), token=token)
    assert any("reading" in text for text in seen)  # cancelled while reading
    assert remote.evaluate().n == 359 and remote.restarts == 0
