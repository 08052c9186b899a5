"""Look before opening (issue #10): every entry point that reads a user's file refuses a
named pipe, a device, a socket or (where a file is wanted) a folder from ``os.stat`` —
promptly, with a sentence — and never blocks on a pipe nobody writes to."""

import os
import socket
import threading
from pathlib import Path

import pytest

from core.errors import InputError, MechscopeError, ModelLoadError
from core.files import guard
from core.files.checkpoints import open_checkpoint
from core.files.images import load_image
from core.files.probe import probe, probe_image
from core.files.sniff import sniff
from core.files.user_data import load_user_data
from tests.hostile.messages import assert_readable

CLASSES = tuple(str(i) for i in range(10))
PROMPT_S = 5.0

ENTRY_POINTS = {
    "sniff": sniff,
    "probe": probe,
    "probe_image": probe_image,
    "load_image": load_image,
    "load_user_data": lambda p: load_user_data(p, CLASSES, (1, 16, 16)),
    "open_checkpoint": lambda p: open_checkpoint(p, None),
}


def _call_with_timeout(fn, path: Path):
    """(returned value, raised exception) of ``fn(path)`` run in a thread, or fail if
    it is still running after PROMPT_S — then free the thread by opening the pipe's
    other end, so a regression cannot hang the test run."""
    outcome = {}

    def run():
        try:
            outcome["value"] = fn(path)
        except BaseException as exc:  # the test inspects whatever it was
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PROMPT_S)
    if thread.is_alive():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
        thread.join(PROMPT_S)
        pytest.fail(f"{fn} blocked on {path.name} for more than {PROMPT_S:.0f} s")
    return outcome.get("value"), outcome.get("error")


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "model.pt"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_named_pipe_never_blocks_and_is_refused(fifo, entry):
    value, error = _call_with_timeout(ENTRY_POINTS[entry], fifo)
    if entry == "sniff":  # sniff never raises: it says what the path is
        assert error is None and value.kind == "pipe", value
        return
    assert isinstance(error, MechscopeError), repr(error)
    assert "model.pt is a named pipe, not a file" in str(error)
    assert_readable(str(error), "model.pt")


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_socket_is_refused(tmp_path, entry):
    path = tmp_path / "s.pt"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        value, error = _call_with_timeout(ENTRY_POINTS[entry], path)
    finally:
        server.close()
    if entry == "sniff":
        assert value.kind == "socket"
    else:
        assert "s.pt is a socket, not a file" in str(error), repr(error)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_device_is_refused(entry):
    # /dev/zero would hand out zeros for ever to a reader that trusted it.
    value, error = _call_with_timeout(ENTRY_POINTS[entry], Path("/dev/zero"))
    if entry == "sniff":
        assert value.kind == "device"
    else:
        assert "zero is a device, not a file" in str(error), repr(error)


@pytest.mark.parametrize("entry", ["probe", "probe_image", "load_image", "open_checkpoint"])
def test_a_folder_is_not_a_model_or_an_image(tmp_path, entry):
    folder = tmp_path / "weights.pt"
    folder.mkdir()
    _, error = _call_with_timeout(ENTRY_POINTS[entry], folder)
    assert "weights.pt is a folder, not a file; choose the" in str(error), repr(error)
    assert_readable(str(error), "weights.pt")


def test_missing_files_are_named(tmp_path):
    for entry in ("probe", "load_image", "load_user_data"):
        _, error = _call_with_timeout(ENTRY_POINTS[entry], tmp_path / "gone.pt")
        assert "gone.pt does not exist" in str(error), repr(error)
    assert sniff(tmp_path / "gone.pt").kind == "missing"


def test_models_raise_model_errors_and_images_input_errors(fifo):
    with pytest.raises(ModelLoadError):
        probe(fifo)
    with pytest.raises(InputError):
        load_image(fifo)


def test_a_file_swapped_for_a_pipe_after_the_first_look(fifo, monkeypatch):
    # The first look (os.stat) is fooled; the check on the opened descriptor is not.
    real_stat = os.stat
    regular = real_stat(__file__)
    monkeypatch.setattr(guard.os, "stat", lambda p, *a, **k: regular
                        if isinstance(p, (str, Path)) and Path(p) == fifo
                        else real_stat(p, *a, **k))
    _, error = _call_with_timeout(lambda p: guard.open_regular(p), fifo)
    assert "model.pt is a named pipe, not a file" in str(error), repr(error)


def test_a_folder_of_images_passes_over_pipes(tmp_path):
    (tmp_path / "data" / "3").mkdir(parents=True)
    os.mkfifo(tmp_path / "data" / "3" / "digit.png")
    _, error = _call_with_timeout(ENTRY_POINTS["load_user_data"], tmp_path / "data")
    assert "data has no image files in its class folders" in str(error), repr(error)
