"""``main()`` in a subprocess: a second QApplication inside pytest would abort."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _screenshot(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run main.py with ``args`` and ``--screenshot``; the run succeeded and drew a real,
    non-blank window."""
    out = tmp_path / "shot.png"
    proc = _run(*args, "--screenshot", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.stat().st_size > 20_000
    return proc


def _isolated(tmp_path: Path) -> dict:
    """An environment whose settings and log live in ``tmp_path``."""
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
                XDG_CONFIG_HOME=str(tmp_path / "config"),
                XDG_DATA_HOME=str(tmp_path / "data"))


def test_smoke_test_exits_zero():
    proc = _run("--smoke-test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_screenshot_of_a_layer(tmp_path):
    out = tmp_path / "fc1.png"
    proc = _run("--layer", "fc1", "--input", "5", "--ablate", "fc1:1,2", "--screenshot",
                str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.stat().st_size > 20_000  # a real, drawn window, not an empty image


def test_help_lists_models_and_layers():
    proc = _run("--help")
    assert proc.returncode == 0
    assert "digits_cnn" in proc.stdout and "conv2" in proc.stdout
    assert "induction_transformer" in proc.stdout and "block1.attn" in proc.stdout


def test_sigterm_closes_the_window_normally(tmp_path):
    """A logout's SIGTERM: settings are saved and the exit code is 0."""
    import signal
    import time

    env = _isolated(tmp_path)
    proc = subprocess.Popen([sys.executable, "main.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "data" / "Mechscope" / "mechscope.log"
    # As early as the compute process says it is ready: the window may still be starting
    # (a SIGTERM then used to close it before the event loop ran, which then never ended).
    deadline = time.monotonic() + 120
    while not (log.exists() and "ready" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a file another process writes; not a timing assertion
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (tmp_path / "config" / "Mechscope" / "Mechscope.ini").exists()
    assert "leaked semaphore" not in err


def _digit_png(path: Path) -> None:
    import numpy as np
    from PIL import Image

    from core.datasets import load_digits

    digits = load_digits("eval")
    Image.fromarray((255 * digits.display[0]).astype(np.uint8)).resize(
        (64, 64), Image.NEAREST).save(path)


def test_a_file_on_the_command_line_opens_as_file_open_would(tmp_path):
    """``python main.py FILE --screenshot`` waits for the outcome and saves the window."""
    image = tmp_path / "digit.png"
    _digit_png(image)
    _screenshot(tmp_path, str(image))


def test_a_bad_file_on_the_command_line_shows_its_message(tmp_path):
    page = tmp_path / "model.pt"
    page.write_text("<!doctype html><html>sign in</html>")
    assert "web page" in _screenshot(tmp_path, str(page)).stdout


def test_quit_mid_job_exits_zero(tmp_path):
    """SIGTERM while the compute process evaluates a large dataset of the user's."""
    import signal
    import time

    import numpy as np

    data = tmp_path / "big.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.random((60_000, 1, 16, 16), dtype=np.float32),
             y=rng.integers(0, 10, 60_000))
    env = _isolated(tmp_path)
    proc = subprocess.Popen([sys.executable, "main.py", str(data)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "data" / "Mechscope" / "mechscope.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "ready" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling a file another process writes; not a timing assertion
    time.sleep(0.5)  # the data file is being read and evaluated now
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_a_file_that_asks_a_question_shows_it_on_the_command_line(tmp_path):
    """An ONNX model of another input size asks how its images are scaled: with
    --screenshot the question is the outcome, printed and drawn in the window."""
    from tests.core.mnist_like import make

    model = tmp_path / "mnist28.onnx"
    make(model, steps=5)
    assert "how should their values be scaled" in _screenshot(tmp_path, str(model)).stdout


def test_a_screenshot_needs_no_display(tmp_path):
    """The README's --screenshot examples on a machine with no display at all."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "headless.png"
    proc = subprocess.run([sys.executable, "main.py", "--layer", "conv2", "--screenshot",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 20_000
