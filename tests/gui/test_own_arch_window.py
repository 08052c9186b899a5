"""Any trusted architecture in the real window on the compute process (issue #15): a
TorchScript model of a class Mechscope does not ship opens after the trust question,
and an image model of another size asks how its images are scaled without asking for
trust a second time."""

import warnings

import pytest
import torch

from tests.core import own_models

WAIT = 60_000


@pytest.fixture
def window(compute_window):
    return compute_window


def _trust(qtbot, window, path):
    window.workbench.open_file(str(path))
    qtbot.waitUntil(lambda: window.files.dialog is not None
                    and window.files.dialog.isVisible(), timeout=WAIT)
    assert window.workbench.info.name == "digits_cnn"  # nothing ran before the answer
    return window.files.dialog


def test_a_torchscript_of_its_own_architecture_opens_after_trust(qtbot, window, tmp_path):
    path = tmp_path / "residual.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(own_models.seeded(own_models.Residual)), str(path))
    dialog = _trust(qtbot, window, path)
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        dialog.trust.click()
    info = window.workbench.info
    assert "residual.pt" in info.title and "TorchScript" in info.title
    assert "block2.conv" in [layer.name for layer in info.layers]
    assert "whole forward pass" in info.note
    assert window.message_bar.message() == ""


def test_the_input_spec_question_keeps_the_trust(qtbot, window, tmp_path):
    path = tmp_path / "colour.pt"
    torch.save(own_models.seeded(own_models.Colour), str(path))
    trust = _trust(qtbot, window, path)
    trust.trust.click()
    qtbot.waitUntil(lambda: window.files.spec_dialog is not None
                    and window.files.spec_dialog.isVisible(), timeout=WAIT)
    with qtbot.waitSignal(window.workbench.model_opened, timeout=WAIT):
        window.files.spec_dialog.accept()
    assert window.files.dialog is trust  # not asked for trust again
    assert window.workbench.info.input_shape == (3, 32, 32)
    assert "colour.pt" in window.workbench.info.title
