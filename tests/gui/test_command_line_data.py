"""``main.py FILE --data DATA`` for a model file that opens without a question (weights
of the built-in CNN here; a Keras file goes the same way): the window opens it on DATA
from the start, in the compute process — not on the built-in digits with the flag lost
(issue #15 review) — and DATA that does not fit is the sentence, the model open before
kept."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from core.datasets import load_digits
from tests.gui.conftest import LOAD_TIMEOUT_MS
from tests.hostile.corpus import _digits_state

ROOT = Path(__file__).resolve().parents[2]


def _digits(path, labels=None, channels_last=False):
    digits = load_digits("eval")
    x = np.array(digits.inputs)
    if channels_last:
        x = np.transpose(x, (0, 2, 3, 1)).copy()
    np.savez(path, x=x, y=np.array(digits.labels) if labels is None else labels)
    return str(path)


def test_data_from_the_command_line_is_what_the_model_opens_on(qtbot, make_window,
                                                               tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save(_digits_state(), weights)
    n = len(load_digits("eval").labels)
    bad = _digits(tmp_path / "badlabels.npz", np.arange(n) % 43)
    window = make_window()
    wb, opener = window.workbench, window.files

    opener.set_command_line(str(weights), bad, False)
    with qtbot.waitSignal(wb.file_outcome, timeout=LOAD_TIMEOUT_MS) as outcome:
        opener.open_given(str(weights))
    assert outcome.args[0] == str(weights) and "badlabels.npz: labels" in outcome.args[1]
    assert "42" in outcome.args[1]
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=LOAD_TIMEOUT_MS)
    assert wb.info.name == "digits_cnn" and wb.info.dataset_source == "built-in"

    good = _digits(tmp_path / "mine.npz", channels_last=True)
    opener.set_command_line(str(weights), good, False)
    with qtbot.waitSignal(wb.model_opened, timeout=LOAD_TIMEOUT_MS) as opened:
        opener.open_given(str(weights))
    assert opened.args[0].dataset_source == "mine.npz"
    assert opened.args[0].dataset_size == n
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=LOAD_TIMEOUT_MS)
    # Another file (not the command line's) opens as File › Open would, on its own data.
    other = tmp_path / "other.pt"
    torch.save(_digits_state(), other)
    with qtbot.waitSignal(wb.model_opened, timeout=LOAD_TIMEOUT_MS) as opened:
        opener.open_given(str(other))
    assert opened.args[0].dataset_source == "built-in"


def test_main_py_with_data_that_does_not_fit_prints_its_sentence(tmp_path):
    """The route the review found the flag lost on: ``main.py FILE --data DATA``."""
    weights = tmp_path / "weights.pt"
    torch.save(_digits_state(), weights)
    bad = _digits(tmp_path / "badlabels.npz", np.arange(len(load_digits("eval").labels)) % 43)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "main.py", str(weights), "--data", bad,
                           "--screenshot", str(tmp_path / "shot.png")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert f"{weights}: badlabels.npz: labels" in proc.stdout, proc.stdout + proc.stderr
