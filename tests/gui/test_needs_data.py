"""A trusted pickled model of the user's own that reads rows of numbers fits no
built-in dataset (NeedsData, issue #15): the window says so and asks for inputs and
labels in a non-blocking dialog; Cancel keeps the model that was open; the chosen file
opens the model on it, in the compute process (the path users take). The command
line's --data and --trust answer the same questions."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QLineEdit

from core.kinds import ModelKind
from tests.gui.conftest import LOAD_TIMEOUT_MS
from tests.gui.tabular_models import synthetic_rows, trained_mlp

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    mlp = trained_mlp()
    model = folder / "tabular.pt"
    torch.save(mlp, model)  # the whole module: code, opened only when trusted
    rows, labels = synthetic_rows(120, seed=9)
    np.savez(folder / "rows.npz", x=rows, y=labels)
    with torch.no_grad():
        predicted = mlp(torch.from_numpy(rows)).argmax(dim=1).numpy()
    return model, folder / "rows.npz", float((predicted == labels).mean())


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# The offscreen platform cannot raise a dialog or grab the keyboard for it.
@pytest.mark.qt_log_ignore("This plugin does not support (raise|grabbing the keyboard)")
def test_needs_data_asks_then_opens_on_the_chosen_rows(qtbot, make_window, own_files):
    model, rows, accuracy = own_files
    window = make_window()
    wb, opener = window.workbench, window.files
    with qtbot.waitSignal(wb.data_needed, timeout=LOAD_TIMEOUT_MS) as asked:
        wb.open_checkpoint(str(model), _sha(model))
    dialog = opener.data_dialog
    assert dialog.isVisible()
    assert dialog.windowTitle() == "Choose inputs and labels for tabular.pt"
    assert window.message_bar.message() == str(asked.args[0])
    assert "rows of 12 numbers" in window.message_bar.message()
    dialog.reject()  # Cancel: the digits model stays
    assert "tabular.pt was not opened" in window.message_bar.message()
    assert wb.info.name == "digits_cnn" and not window.worker.busy

    with qtbot.waitSignal(wb.data_needed, timeout=LOAD_TIMEOUT_MS):
        wb.open_checkpoint(str(model), _sha(model))
    dialog = opener.data_dialog
    # As a user does: the file's name typed in the dialog's name box, then Open.
    qtbot.keyClicks(dialog.findChild(QLineEdit, "fileNameEdit"), rows.name)
    with qtbot.waitSignal(wb.model_opened, timeout=LOAD_TIMEOUT_MS) as opened:
        dialog.accept()
    assert not dialog.isVisible()
    info = opened.args[0]
    assert info.kind is ModelKind.VALUES and info.dataset_size == 120
    assert info.dataset_source == "rows.npz"
    assert window.inputs.currentWidget() is window.presenter.values_input
    panel = window.accuracy_panel
    qtbot.waitUntil(lambda: panel.result is not None and not window.worker.busy,
                    timeout=LOAD_TIMEOUT_MS)
    assert panel.result.score == pytest.approx(accuracy)


@pytest.mark.qt_log_ignore("This plugin does not support (raise|grabbing the keyboard)")
def test_a_folder_filter_switches_the_dialog_to_folders(qtbot, make_window, own_files):
    from PySide6.QtWidgets import QFileDialog

    from gui.data_dialog import FOLDER

    model, _, _ = own_files
    window = make_window()
    with qtbot.waitSignal(window.workbench.data_needed, timeout=LOAD_TIMEOUT_MS):
        window.workbench.open_checkpoint(str(model), _sha(model))
    dialog = window.files.data_dialog
    assert dialog.fileMode() == QFileDialog.FileMode.ExistingFile
    dialog.selectNameFilter(FOLDER)
    dialog.filterSelected.emit(FOLDER)
    assert dialog.fileMode() == QFileDialog.FileMode.Directory
    dialog.reject()


def _main(*args):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "main.py", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_command_line_data_and_trust(own_files, tmp_path):
    model, rows, _ = own_files
    shot = tmp_path / "shot.png"
    proc = _main(model, "--trust", "--data", rows, "--screenshot", shot)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert shot.stat().st_size > 20_000
    # Without --data a script cannot choose a file: the sentence is the failure.
    proc = _main(model, "--trust", "--screenshot", tmp_path / "none.png")
    assert proc.returncode == 2
    assert "reads rows of 12 numbers" in proc.stdout and "--data" in proc.stdout
    # Without --trust the file's code is not run: the trust question is the outcome.
    proc = _main(model, "--data", rows, "--screenshot", tmp_path / "asked.png")
    assert proc.returncode == 0 and "opening it runs code" in proc.stdout
