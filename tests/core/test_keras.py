"""Keras files open through Keras 3 on its torch backend (issue #15): a CNN trained and
saved here opens through the compute process and in-process, its captured maps and
ablations equal Keras's own, and a file with a Lambda layer never runs its code
without the user's trust — not when it is probed, nor when Keras loads it in safe mode.
"""

import json
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.ablation import Ablation
from core.datasets import load_digits
from core.errors import ModelLoadError

# The backend is chosen once per process, at keras's first import.
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")
keras = pytest.importorskip("keras")
pytest.importorskip("h5py")
if keras.config.backend() != "torch":
    pytest.skip("keras was imported with another backend", allow_module_level=True)

import torch  # noqa: E402

from core.adapters.keras_adapter import KerasAdapter, import_keras  # noqa: E402
from core.files import keras_file  # noqa: E402
from core.files.checkpoints import NeedsData, NeedsTrust  # noqa: E402
from core.files.opening import open_model_file  # noqa: E402
from core.files.sniff import sniff  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def channels_last(x: np.ndarray) -> np.ndarray:
    return np.transpose(np.asarray(x), (0, 2, 3, 1)).copy()


def _cnn(lambda_path=None):
    """A functional CNN on (16, 16, 1) digits with a layer named conv2d_1; with
    ``lambda_path``, a Lambda layer first whose function writes that file."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 1), name="image")
    x = inp
    if lambda_path is not None:
        # A Python lambda, stored in the file as bytecode: the code a file can carry.
        writes = eval(f"lambda t: (open({str(lambda_path)!r}, 'w').close(), t)[1]")
        x = keras.layers.Lambda(writes, name="lam")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv2d")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2d_1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inp, keras.layers.Dense(10, name="dense")(x))


def _train(model, epochs=2):
    """A few steps of Adam on the shipped digits, so accuracy means something."""
    train = load_digits("train")
    x = torch.from_numpy(channels_last(train.inputs))
    y = torch.from_numpy(np.array(train.labels))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            loss.backward()
            opt.step()


def _save(model, path):
    with warnings.catch_warnings():  # Keras 3.15 converts its torch weights the numpy-1 way
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The saved models of this module, made once: a trained CNN as .keras and .h5,
    the same with a canary-writing Lambda, and the canary's path."""
    root = tmp_path_factory.mktemp("keras")
    model = _cnn()
    _train(model)
    canary = root / "canary"
    lam = _cnn(canary)
    out = {"model": model, "canary": canary,
           "cnn": _save(model, root / "cnn.keras"), "cnn_h5": _save(model, root / "cnn.h5"),
           "lam": _save(lam, root / "lam.keras"), "lam_h5": _save(lam, root / "lam.h5")}
    canary.unlink()  # building the Lambda layer ran it once, on a symbolic tensor
    return out


@pytest.fixture(scope="module")
def remote():
    """The compute process users get, with the shipped CNN open."""
    from core.remote import RemoteSession

    r = RemoteSession()
    r.open_model("digits_cnn")
    yield r
    r.close()


def _reference_maps(model, x):
    sub = keras.Model(model.input, model.get_layer("conv2d_1").output)
    with torch.no_grad():
        return np.moveaxis(sub(torch.from_numpy(channels_last(x))).numpy(), -1, 1)


def _accuracy(model, channel=None):
    """Accuracy on the held-out digits, with ``channel`` of conv2d_1 zeroed by a
    hand-written torch forward hook on the Keras layer."""
    data = load_digits("eval")
    handle = None
    if channel is not None:
        def zero(_module, _inputs, out):
            out = out.clone()
            out[..., channel] = 0
            return out
        handle = model.get_layer("conv2d_1").register_forward_hook(zero)
    try:
        with torch.no_grad():
            logits = model(torch.from_numpy(channels_last(data.inputs))).numpy()
    finally:
        if handle is not None:
            handle.remove()
    return float((logits.argmax(1) == np.asarray(data.labels)).mean())


def _harmful_channel(model) -> int:
    return int(np.argmin([_accuracy(model, c) for c in range(8)]))


# --- what a file is, read as data -----------------------------------------------------

def test_sniffed_by_content_not_by_name(files, tmp_path):
    for key, kind in (("cnn", "keras"), ("cnn_h5", "keras-h5")):
        renamed = tmp_path / f"{key}.bin"
        renamed.write_bytes(Path(files[key]).read_bytes())
        assert sniff(renamed).kind == kind
    weights = tmp_path / "only.weights.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        files["model"].save_weights(weights)
    assert sniff(weights).kind == "hdf5"


def test_the_probe_lists_the_lambda_without_importing_keras(files):
    """describe() is what the probe's child runs; in a fresh interpreter it reads both
    formats, finds the Lambda, declares the input, and keras is never imported."""
    code = ("import json, sys\nfrom core.files.keras_config import describe\n"
            f"out = [describe({str(files['lam'])!r}, 'keras'), "
            f"describe({str(files['lam_h5'])!r}, 'keras-h5'), "
            f"describe({str(files['cnn'])!r}, 'keras')]\n"
            "print(json.dumps([out, 'keras' in sys.modules]))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    (lam, lam_h5, cnn), imported = json.loads(run.stdout)
    assert not imported
    assert lam["names"] == ["Lambda (layer 'lam')"] == lam_h5["names"]
    assert cnn["names"] == []
    assert lam["input"] == {"shape": [1, 16, 16], "dtype": "float32"} == cnn["input"]
    assert not files["canary"].exists()


# --- the adapter ------------------------------------------------------------------------

def test_the_adapter_captures_what_keras_computes(files):
    model = keras.saving.load_model(files["cnn"], compile=False)
    adapter = KerasAdapter(model, "cnn")
    assert adapter.input_shape == (1, 16, 16)
    layers = {info.name: info for info in adapter.layers()}
    assert list(layers) == ["conv2d", "pool", "conv2d_1", "flatten", "dense"]
    assert layers["conv2d_1"].output_shape == (8, 6, 6)  # (H, W, C) shown as channels
    assert layers["conv2d_1"].kind == "Conv2D"
    assert layers["dense"].output_shape == (10,)
    for name, info in layers.items():
        assert info.n_params == model.get_layer(name).count_params()
    x = np.asarray(load_digits("eval").inputs[:16])
    result = adapter.run(x, capture=("conv2d_1",))
    np.testing.assert_allclose(result.activations["conv2d_1"], _reference_maps(model, x),
                               rtol=1e-5, atol=1e-6)


def test_ablations_and_sweeps_act_on_channels(files):
    adapter = KerasAdapter(keras.saving.load_model(files["cnn"], compile=False), "cnn")
    x = np.asarray(load_digits("eval").inputs[:32])
    intact = adapter.run(x, capture=("conv2d_1",))
    means = {"conv2d_1": intact.activations["conv2d_1"].mean(0)}
    zeroed = adapter.run(x, capture=("conv2d_1",), ablations=(Ablation("conv2d_1", (3,)),))
    maps = zeroed.activations["conv2d_1"]
    assert not maps[:, 3].any() and np.array_equal(maps[:, 2],
                                                   intact.activations["conv2d_1"][:, 2])
    mean = adapter.run(x, capture=("conv2d_1",), means=means,
                       ablations=(Ablation("conv2d_1", (5,), "mean"),))
    np.testing.assert_allclose(mean.activations["conv2d_1"][:, 5],
                               np.broadcast_to(means["conv2d_1"][5], (32, 6, 6)))
    sweep = adapter.run_sweep("conv2d_1", [3, 5], "mean", means, x)
    np.testing.assert_allclose(sweep[1], mean.outputs, rtol=1e-5, atol=1e-5)
    # The stop-early run and a Dense site go through the torch adapter's hooks as well.
    assert adapter.run(x, capture=("pool",), stop_after="pool").outputs is None
    dense = adapter.run(x, capture=("dense",), ablations=(Ablation("dense", (0,)),))
    assert not dense.outputs[:, 0].any()


def test_a_model_on_rows_of_numbers_gets_neuron_sites():
    inp = keras.Input((5,))
    hidden = keras.layers.Dense(7, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(3, name="out")(hidden))
    adapter = KerasAdapter(model, "rows")
    assert adapter.input_shape == (5,)
    assert [(i.name, i.output_shape, i.n_params) for i in adapter.layers()] == \
        [("hidden", (7,), 42), ("out", (3,), 24)]
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    run = adapter.run(x, capture=("hidden",), ablations=(Ablation("hidden", (2,)),))
    assert not run.activations["hidden"][:, 2].any()
    with torch.no_grad():
        np.testing.assert_allclose(adapter.run(x).outputs, model(torch.from_numpy(x)).numpy(),
                                   rtol=1e-6)


def test_a_layer_named_like_a_torch_attribute_is_a_clear_error():
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(2, name="forward")(inp))
    with pytest.raises(ModelLoadError, match="layer named 'forward'"):
        KerasAdapter(model, "clash")


def test_keras_on_another_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    with pytest.raises(ModelLoadError, match="jax backend.*torch backend"):
        import_keras()


# --- safety -----------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["lam", "lam_h5"])
def test_a_lambda_asks_for_trust_and_safe_mode_refuses_it(files, key):
    with pytest.raises(NeedsTrust) as asked:
        open_model_file(str(files[key]))
    assert asked.value.unsafe_globals == ("Lambda (layer 'lam')",)
    assert "Keras" in asked.value.description
    # Keras's safe mode is the second guard: even loading it untrusted runs nothing.
    with pytest.raises(ModelLoadError, match="safe mode refused"):
        keras_file.load_model(str(files[key]), trusted=False)
    assert not files["canary"].exists()


@keras.saving.register_keras_serializable(package="mechscope_test")
class Doubles(keras.layers.Layer):
    """A custom layer: its code lives in this module, not in Keras."""

    def call(self, x):
        return x * 2.0


def test_a_custom_layer_asks_for_trust_then_opens(tmp_path):
    """Its class lives in a module of the user's (here this one, where it is
    registered): trusting the file lets that module be imported and the layer built."""
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(2, 3, name="conv")(Doubles(name="twice")(inp))
    model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(x)))
    path = _save(model, tmp_path / "custom.keras")
    with pytest.raises(NeedsTrust) as asked:
        open_model_file(str(path))
    assert asked.value.unsafe_globals == (f"{Doubles.__module__}.Doubles (layer 'twice')",)
    opened = open_model_file(str(path), trusted_sha256=asked.value.sha256)
    assert [info.name for info in opened.adapter.layers()][:2] == ["twice", "conv"]


def doubles(x):
    return x * 2.0


def test_a_function_of_the_users_own_is_one_sentence(tmp_path):
    """Only its name is in the file: Keras cannot find it, and nothing asks for trust."""
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Flatten()(inp)
    model = keras.Model(inp, keras.layers.Dense(10, activation=doubles, name="out")(x))
    path = _save(model, tmp_path / "own_function.keras")
    with pytest.raises(ModelLoadError, match="uses the function 'doubles', code of your own"):
        open_model_file(str(path))


def test_broken_files_are_one_sentence(files, tmp_path):
    cut = tmp_path / "cut.keras"
    cut.write_bytes(Path(files["cnn"]).read_bytes()[:3000])
    with pytest.raises(ModelLoadError, match="damaged ZIP archive"):
        open_model_file(str(cut))
    weights = tmp_path / "only.weights.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        files["model"].save_weights(weights)
    with pytest.raises(ModelLoadError, match="without a Keras model in it"):
        open_model_file(str(weights))
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", "{not json")
        archive.writestr("model.weights.h5", b"")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        open_model_file(str(bad))


def _rewritten(source: Path, target: Path, change) -> Path:
    """``source`` (a .keras zip) with its config.json passed through ``change``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename == "config.json":
                data = change(json.loads(data))
                data = data if isinstance(data, (bytes, str)) else json.dumps(data)
            new.writestr(item, data)
    return target


def test_hostile_keras_files(files, tmp_path):
    """Code hidden where no Lambda layer is, a module that is not Keras, a config nested
    to crash a parser, an HDF5 file of garbage: each is a question or a sentence, and
    the canary is never written — not by the probe, nor by Keras's safe mode."""
    lam = json.loads(zipfile.ZipFile(files["lam"]).read("config.json"))
    function = next(layer for layer in lam["config"]["layers"]
                    if layer["class_name"] == "Lambda")["config"]["function"]

    def hide_in_activation(config):
        dense = next(layer for layer in config["config"]["layers"]
                     if layer["class_name"] == "Dense")
        dense["config"]["activation"] = function
        return config

    def os_system(config):
        config["config"]["layers"][1]["module"] = "os"
        config["config"]["layers"][1]["class_name"] = "system"
        return config

    hidden = _rewritten(files["cnn"], tmp_path / "hidden.keras", hide_in_activation)
    system = _rewritten(files["cnn"], tmp_path / "system.keras", os_system)
    for path, listed, refused in (
            (hidden, "a Python function stored in the file (in layer 'dense')",
             "safe mode refused"),
            (system, "os.system (layer 'conv2d')", "uses the class 'system'")):
        with pytest.raises(NeedsTrust) as asked:
            open_model_file(str(path))
        assert listed in asked.value.unsafe_globals
        with pytest.raises(ModelLoadError, match=refused):
            keras_file.load_model(str(path), trusted=False)
    deep = _rewritten(files["cnn"], tmp_path / "deep.keras",
                      lambda _config: "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelLoadError, match="nested too deeply|not valid JSON"):
        open_model_file(str(deep))
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(4096))
    with pytest.raises(ModelLoadError, match="could not be read"):
        open_model_file(str(garbage))
    assert not files["canary"].exists()


# --- opening, as users do ---------------------------------------------------------------

def test_opens_in_the_compute_process(files, remote):
    """The default app's path: the compute process imports keras on its torch backend,
    the CNN opens on the digits, and its maps and ablations are Keras's own."""
    model = files["model"]
    info = remote.open_checkpoint(str(files["cnn"]))
    assert info.input_shape == (1, 16, 16)
    assert info.layer("conv2d_1").output_shape == (8, 6, 6)
    assert info.layer("conv2d_1").kind == "Conv2D"
    x = np.asarray(load_digits("eval").inputs[:1])
    maps = remote.capture(x[0], ["conv2d_1"]).activations["conv2d_1"]
    np.testing.assert_allclose(maps, _reference_maps(model, x)[0], rtol=1e-5, atol=1e-6)
    baseline = _accuracy(model)
    assert baseline > 0.6  # trained, not chance
    channel = _harmful_channel(model)
    result = remote.evaluate((Ablation("conv2d_1", (channel,)),))
    assert result.baseline_score == pytest.approx(baseline, abs=1e-12)
    assert result.score == pytest.approx(_accuracy(model, channel), abs=1e-12)
    assert result.score < baseline


def test_a_lambda_opens_in_the_compute_process_only_when_trusted(files, remote):
    remote.open_model("digits_cnn")
    with pytest.raises(NeedsTrust) as asked:
        remote.open_checkpoint(str(files["lam"]))
    assert asked.value.unsafe_globals == ("Lambda (layer 'lam')",)
    assert not files["canary"].exists()
    assert remote.evaluate().score > 0.95  # the shipped CNN is still open
    info = remote.open_checkpoint(str(files["lam"]), trusted_sha256=asked.value.sha256)
    assert info.layer("lam") is not None  # its code ran, as the user chose


def test_a_legacy_h5_model_opens_in_process(files):
    from core.session import Session

    session = Session()
    info = session.open_checkpoint(str(files["cnn_h5"]))
    assert [layer.name for layer in info.layers][:3] == ["conv2d", "pool", "conv2d_1"]
    result = session.evaluate((Ablation("conv2d_1", (2,)),))
    assert result.score == pytest.approx(_accuracy(files["model"], 2), abs=1e-12)


def test_every_view_runs_on_a_keras_model(files):
    from core.session import Session

    session = Session()
    info = session.open_checkpoint(str(files["cnn"]))
    assert "whole forward pass" in info.note and "Keras" in info.note
    assert info.n_params == files["model"].count_params()
    assert session.unit_page("conv2d_1", 0).n_units == 8
    sweep = session.unit_importance("conv2d_1")
    assert sweep.units == tuple(range(8))
    np.testing.assert_allclose(sweep.score, [_accuracy(files["model"], c) for c in range(8)],
                               atol=1e-12)
    assert session.layer_map("conv2d_1") is not None
    vis = session.feature_visualisation("conv2d_1", 0, steps=8)
    assert vis.model_input.shape == (1, 16, 16)


def test_a_model_on_rows_opens_on_the_users_data(tmp_path):
    """Not an image: no built-in data fits, the user's rows do; the sites are neurons."""
    from core.session import Session

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    inp = keras.Input((5,))
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(3, name="out")(hidden))
    path = _save(model, tmp_path / "rows.keras")
    with pytest.raises(NeedsData) as asked:
        open_model_file(str(path))
    assert "5" in str(asked.value)
    data = tmp_path / "rows.npz"
    np.savez(data, x=x, y=y)
    session = Session()
    info = session.open_checkpoint(str(path), data=str(data))
    assert info.layer("hidden").output_shape == (6,)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    result = session.evaluate((Ablation("hidden", (1,)),))
    assert result.baseline_score == pytest.approx(float((logits.argmax(1) == y).mean()))


def test_an_image_of_another_size_asks_how_to_scale_it(tmp_path):
    from core.files.checkpoints import NeedsInputSpec

    inp = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(2, 3, name="conv")(inp)
    model = keras.Model(inp, keras.layers.Dense(10)(keras.layers.Flatten()(x)))
    path = _save(model, tmp_path / "mnist.keras")
    with pytest.raises(NeedsInputSpec) as asked:
        open_model_file(str(path))
    opened = open_model_file(str(path), spec=asked.value.guess)
    assert opened.dataset.inputs.shape[1:] == (1, 28, 28)
    assert opened.adapter.layers()[0].output_shape == (2, 26, 26)


def test_without_keras_the_sentence_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # as if it were not installed
    with pytest.raises(ModelLoadError, match=r"pip install .*\[keras\]"):
        import_keras()
