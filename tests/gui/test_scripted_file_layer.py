"""``main.py FILE --layer … --ablate … --screenshot``: the layer named is the file
model's, chosen once its model opened (a model of its own architecture has layers the
built-in one lacks), through the scripted run's own steps on the real window."""

import warnings

import torch
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from core.ablation import Ablation
from gui.app import Options
from gui.scripted import Script
from tests.core import own_models

WAIT = 120_000


def _script(qtbot, window, options) -> Script:
    """Run ``options``' steps on ``window`` (its built-in model already open) until the
    script closes it."""
    window.files.set_command_line(options.file, options.data, options.trust)
    script = Script(window, options, QApplication.instance())
    with qtbot.waitSignal(window.closed, timeout=WAIT):
        QTimer.singleShot(0, script._advance)
    return script


def _residual(tmp_path) -> str:
    path = tmp_path / "residual.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(own_models.seeded(own_models.Residual)), str(path))
    return str(path)


def test_the_layer_and_ablation_of_a_trusted_file_model(qtbot, make_window, tmp_path):
    window = make_window("digits_cnn", layer="conv1")
    shot = tmp_path / "shot.png"
    options = Options(file=_residual(tmp_path), trust=True, layer="block2.conv",
                      ablations=(Ablation("block2.conv", (0, 1)),), screenshot=str(shot))
    script = _script(qtbot, window, options)
    assert script.exit_code == 0 and shot.stat().st_size > 0
    wb = window.workbench
    assert "residual.pt" in wb.info.title
    assert wb.layer == "block2.conv"
    assert window.channel_grid.site == "block2.conv"
    assert wb.ablations == (Ablation("block2.conv", (0, 1)),)


def test_a_layer_the_file_model_lacks_is_said(qtbot, make_window, tmp_path, capsys):
    window = make_window("digits_cnn", layer="conv1")
    options = Options(file=_residual(tmp_path), trust=True, layer="conv9",
                      screenshot=str(tmp_path / "shot.png"))
    assert _script(qtbot, window, options).exit_code == 2
    out = capsys.readouterr().out
    assert "--layer conv9: " in out and "its layers are stem, " in out
