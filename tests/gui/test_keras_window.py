"""Keras files in the real window on the compute process (issue #15): a .keras CNN opens
with its Keras layer names and channels shown as channels; one with a Lambda layer asks
for trust first, listing the layer, and its code has not run when the question shows."""

import os
import warnings

import pytest


os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
if keras.config.backend() != "torch":
    pytest.skip("keras was imported with another backend", allow_module_level=True)

WAIT = 60_000


def _save(path, canary=None):
    """A small functional CNN on (16, 16, 1); with ``canary``, a Lambda layer first
    whose function writes that file."""
    inp = keras.Input((16, 16, 1))
    x = inp
    if canary is not None:
        writes = eval(f"lambda t: (open({str(canary)!r}, 'w').close(), t)[1]")
        x = keras.layers.Lambda(writes, name="lam")(x)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv2d_1")(x)
    model = keras.Model(inp, keras.layers.Dense(10, name="dense")(keras.layers.Flatten()(x)))
    with warnings.catch_warnings():  # Keras 3.15 converts its torch weights the numpy-1 way
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(path)
    if canary is not None:
        canary.unlink()  # building the layer ran it once, on a symbolic tensor
    return path


@pytest.fixture
def window(compute_window):
    return compute_window


def test_a_keras_cnn_opens(qtbot, window, tmp_path):
    path = _save(tmp_path / "my_cnn.keras")
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.open_file(str(path))
    info = window.workbench.info
    assert "my_cnn.keras" in info.title and "Keras" in info.note
    assert info.layer("conv2d_1").output_shape == (4, 14, 14)
    assert window.message_bar.message() == ""


def test_a_lambda_asks_for_trust_before_it_runs(qtbot, window, tmp_path):
    canary = tmp_path / "canary"
    path = _save(tmp_path / "lambda.keras", canary)
    window.workbench.open_file(str(path))
    qtbot.waitUntil(lambda: window.files.dialog is not None
                    and window.files.dialog.isVisible(), timeout=WAIT)
    dialog = window.files.dialog
    assert "Lambda (layer 'lam')" in dialog.informativeText()
    assert window.workbench.info.name == "digits_cnn"
    assert not canary.exists()
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        dialog.trust.click()
    assert window.workbench.info.layer("lam") is not None
