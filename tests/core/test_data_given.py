"""A model file opened with the user's data (``--data``, File › Evaluate on a data
file after a question) is evaluated on that data whatever route it opens by — weights
of a built-in architecture, ONNX, a trusted TorchScript — and when the data or the
model do not fit, the sentence says which and why (issue #15 review)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from core.datasets import load_digits
from core.errors import InputError, ModelLoadError
from core.files.array_data import channels_first
from core.files.checkpoints import NeedsTrust
from core.files.user_data import load_own_data
from tests.core import own_models


def _digits_npz(path, channels_last=False, labels=None):
    """The held-out digits as a user saves them: (N, 1, 16, 16), or (N, 16, 16, 1)."""
    digits = load_digits("eval")
    x = np.array(digits.inputs)
    if channels_last:
        x = np.transpose(x, (0, 2, 3, 1)).copy()
    y = np.array(digits.labels) if labels is None else labels
    np.savez(path, x=x, y=y)
    return str(path)


def _bad_labels(path, channels_last=False):
    """Digits whose labels go up to 42, past the 10 scores of a digits model."""
    return _digits_npz(path, channels_last, np.arange(len(load_digits("eval").labels)) % 43)


def _script(model, path):
    with warnings.catch_warnings():  # TorchScript is deprecated, not yet gone
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), str(path))
    return str(path)


def _trusted(session, path, **kwargs):
    with pytest.raises(NeedsTrust) as asked:
        session.open_checkpoint(path)
    return session.open_checkpoint(path, asked.value.sha256, **kwargs)


def _state(session):
    result = session.evaluate()
    return result.n, result.baseline_score


def _rows(tmp_path, features=5, classes=3, n=30, names=None):
    folder = tmp_path / f"rows{features}x{classes}"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.savez(folder / "rows.npz", x=rng.normal(size=(n, features)).astype(np.float32),
             y=np.arange(n) % classes)
    if names is not None:
        (folder / "classes.txt").write_text("".join(f"{name}\n" for name in names))
    return str(folder / "rows.npz")


# --- 1. every route honours the data ------------------------------------------------

def test_weights_of_the_built_in_cnn_open_on_the_data_given(remote, adapter, tmp_path):
    weights = tmp_path / "cnn_weights.pt"
    torch.save(adapter.model.state_dict(), weights)
    before = _state(remote)
    with pytest.raises(InputError, match="bad.npz: labels .*0..9; found 0..42"):
        remote.open_checkpoint(str(weights), data=_bad_labels(tmp_path / "bad.npz"))
    assert _state(remote) == before
    mine = _digits_npz(tmp_path / "mine_chlast.npz", channels_last=True)
    info = remote.open_checkpoint(str(weights), data=mine)
    assert info.dataset_source == "mine_chlast.npz" and info.input_shape == (1, 16, 16)
    assert "mine_chlast.npz" in info.title
    assert remote.evaluate().baseline_score > 0.8  # the digits, laid out for the CNN


def test_an_onnx_file_opens_on_the_data_given(remote, onnx_path, tmp_path):
    before = _state(remote)
    with pytest.raises(InputError, match="labels go up to 42"):
        remote.open_checkpoint(str(onnx_path), data=_bad_labels(tmp_path / "bad.npz"))
    assert _state(remote) == before
    info = remote.open_checkpoint(str(onnx_path),
                                  data=_digits_npz(tmp_path / "onnx_data.npz"))
    assert info.dataset_source == "onnx_data.npz" and "(ONNX)" in info.title
    assert remote.evaluate().n == len(load_digits("eval").labels)


# --- 2. channels-last pictures for a model whose input the file does not say ---------

def test_channels_last_pictures_become_channels_first_when_the_input_is_unknown():
    chlast = np.zeros((5, 16, 16, 1), np.float32)
    assert channels_first(chlast).shape == (5, 1, 16, 16)
    assert channels_first(np.zeros((5, 3, 3, 3))).shape == (5, 3, 3, 3)  # either layout
    assert channels_first(np.zeros((5, 2, 16, 16))).shape == (5, 2, 16, 16)
    assert channels_first(np.zeros((5, 16, 16, 8))).shape == (5, 16, 16, 8)


def test_a_known_input_shape_wins_over_the_channels_last_guess(tmp_path):
    path = tmp_path / "hwc.npz"
    np.savez(path, x=np.zeros((6, 16, 16, 1), np.float32), y=np.arange(6) % 2)
    assert load_own_data(path).inputs.shape == (6, 1, 16, 16)
    # A model that really reads (16, 16, 1) rows gets them as they are.
    assert load_own_data(path, (16, 16, 1)).inputs.shape == (6, 16, 16, 1)


def test_a_trusted_torchscript_reads_channels_last_digits(remote, tmp_path):
    path = _script(own_models.seeded(own_models.Wide), tmp_path / "wide.pt")
    info = _trusted(remote, path, data=_digits_npz(tmp_path / "chlast.npz", True))
    assert info.input_shape == (1, 16, 16) and info.dataset_source == "chlast.npz"


# --- 3. why a trial run failed, in the sentence ---------------------------------------

def test_rows_of_the_wrong_width_are_said_to_be_so(remote, tmp_path):
    path = _script(own_models.seeded(own_models.Rows), tmp_path / "rows.pt")
    before = _state(remote)
    with pytest.raises(InputError, match="rows.npz has 7 numbers per example, but the "
                                         "model reads 5"):
        _trusted(remote, path, data=_rows(tmp_path, features=7))
    assert _state(remote) == before


def test_a_forward_that_raises_is_quoted(remote, tmp_path):
    path = _script(own_models.seeded(own_models.Broken), tmp_path / "broken.pt")
    with pytest.raises(ModelLoadError) as failed:
        _trusted(remote, path, data=_digits_npz(tmp_path / "digits.npz"))
    message = str(failed.value)
    assert "its forward pass failed (RuntimeError: this model is broken on purpose)" \
        in message
    assert "log file" not in message and "Traceback" not in message


def test_a_long_error_is_one_trimmed_line():
    from core.adapters.trial import REASON_CHARS, _one_line

    text = _one_line(ValueError("x" * 500 + "\nsecond line"))
    assert text.startswith("ValueError: xxx") and len(text) == REASON_CHARS
    assert "second" not in text


# --- 4. a classes.txt of the wrong length ---------------------------------------------

def test_a_classes_txt_of_the_wrong_length_is_told_against_the_scores(remote, tmp_path):
    path = _script(own_models.seeded(own_models.Rows), tmp_path / "rows.pt")
    data = _rows(tmp_path, names=("low", "high"))
    with pytest.raises(InputError, match="classes.txt has 2 names, but the model puts "
                                         "out 3 scores"):
        _trusted(remote, path, data=data)
    (tmp_path / "rows5x3" / "classes.txt").write_text("low\nmid\nhigh\n")
    info = remote.open_checkpoint(path, _sha(path), data=data)
    assert info.class_names == ("low", "mid", "high")


def _sha(path):
    from core.files.probe import probe

    return probe(path).sha256


# --- 5. a pickled class that cannot be imported: advice that works --------------------

def test_a_pickle_of_a_class_that_is_gone_suggests_torchscript_or_show(remote, tmp_path,
                                                                       monkeypatch):
    import importlib
    import sys

    (tmp_path / "vanished_models.py").write_text(
        "import torch\n\nclass Vanished(torch.nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.fc = torch.nn.Linear(256, 10)\n\n"
        "    def forward(self, x):\n        return self.fc(x.flatten(1))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("vanished_models")
    path = str(tmp_path / "vanished.pt")
    torch.save(module.Vanished().eval(), path)
    monkeypatch.delitem(sys.modules, "vanished_models")
    with pytest.raises(ModelLoadError) as failed:
        _trusted(remote, path)
    message = str(failed.value)
    assert "(such as vanished_models.Vanished) is not available here" in message
    assert "torch.jit.save" in message and "mechscope.show(model, inputs, labels)" in message
    assert "state_dict" not in message  # weights alone cannot open on its architecture


def test_the_state_dict_hint_stays_for_mechscope_s_own_classes():
    from core.files.checkpoints import _resave_hint

    assert "state_dict" in _resave_hint("")
    assert "state_dict" in _resave_hint("core.zoo.digits_cnn.DigitsCNN")
    assert "TorchScript" in _resave_hint("my_models.Net")


# --- 6. a Keras Lambda of a named function ---------------------------------------------

def _keras():
    import os

    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.config.backend() != "torch":
        pytest.skip("keras was imported with another backend")
    return keras


def _save_keras(model, path):
    with warnings.catch_warnings():  # Keras 3.15 converts its torch weights the numpy-1 way
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(path)
    return str(path)


def double(x):
    return x * 2


def test_a_lambda_of_a_named_function_is_refused_before_any_trust_question(remote,
                                                                           tmp_path):
    keras = _keras()
    layers = keras.layers
    named = keras.Sequential([keras.Input((16, 16, 1)), layers.Lambda(double, name="twice"),
                              layers.Flatten(), layers.Dense(10)])
    path = _save_keras(named, tmp_path / "named.keras")
    before = _state(remote)
    with pytest.raises(ModelLoadError) as refused:  # not NeedsTrust: trust cannot help
        remote.open_checkpoint(path)
    message = str(refused.value)
    assert "uses the function 'double', code of your own that is not stored in the file" \
        in message and "lambda expression" in message
    assert _state(remote) == before
    # A Lambda of Keras's own function by name, or of a lambda, is still asked about.
    for function, name in ((keras.activations.relu, "relu.keras"),
                           (lambda x: x * 2, "anon.keras")):
        model = keras.Sequential([keras.Input((16, 16, 1)), layers.Lambda(function),
                                  layers.Flatten(), layers.Dense(10)])
        with pytest.raises(NeedsTrust):
            remote.open_checkpoint(_save_keras(model, tmp_path / name))
