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
