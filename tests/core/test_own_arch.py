"""Any trusted architecture (issue #15): a TorchScript archive or a pickled module the
user trusted opens on its own architecture, in the compute process users get, with
captures and ablations that equal hand-written hooks on the eager original."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from core.ablation import Ablation
from core.datasets import load_digits
from core.errors import ModelLoadError
from core.files.checkpoints import NeedsData, NeedsInputSpec, NeedsTrust
from tests.core import own_models


def _script(model, path):
    with warnings.catch_warnings():  # TorchScript is deprecated, not yet gone
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), str(path))
    return str(path)


def _pickle(model, path):
    torch.save(model, str(path))
    return str(path)


def _trusted(session, path, **kwargs):
    """Open ``path`` as a user does: refused until trusted, then trusted by content."""
    with pytest.raises(NeedsTrust) as asked:
        session.open_checkpoint(path)
    return session.open_checkpoint(path, asked.value.sha256, **kwargs), asked.value.sha256


def _state(session):
    """What is open: the size of its data and its intact score (RemoteSession keeps no
    ModelInfo of its own)."""
    result = session.evaluate()
    return result.n, result.baseline_score


def _inputs():
    return torch.from_numpy(np.array(load_digits("eval").inputs))


def _hooked(model, site, fn=None):
    """The eager model's outputs with ``fn`` replacing ``site``'s output, and that
    output as ``fn`` returned it."""
    seen = {}

    def hook(_m, _i, out):
        seen["out"] = out if fn is None else fn(out)
        return seen["out"]

    handle = model.get_submodule(site).register_forward_hook(hook)
    try:
        with torch.no_grad():
            logits = model(_inputs())
    finally:
        handle.remove()
    return logits.numpy(), seen["out"].numpy()


def _accuracy(logits):
    return float((logits.argmax(1) == load_digits("eval").labels).mean())


def _zero_channel(unit):
    def fn(out):
        out = out.clone()
        out[:, unit] = 0
        return out
    return fn


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    model = own_models.trained(own_models.Residual, steps=60)
    return model, _script(model, tmp_path_factory.mktemp("own") / "residual.pt")


def test_torchscript_opens_after_trust_and_not_before(remote, residual):
    _, path = residual
    before = _state(remote)
    with pytest.raises(NeedsTrust):
        remote.open_checkpoint(path)
    assert _state(remote) == before
    info, _ = _trusted(remote, path)
    assert "residual.pt" in info.title and "TorchScript" in info.title
    names = [layer.name for layer in info.layers]
    assert {"stem", "block1.conv", "block1.act", "block2.conv", "head"} <= set(names)
    kinds = {layer.name: layer.kind for layer in info.layers}
    assert kinds["block1"] == "Block" and kinds["block2.conv"] == "Conv2d"
    counts = {layer.name: layer.n_params for layer in info.layers}
    assert counts["block1.conv"] == 6 * 6 * 9 + 6 and counts["block1"] == 0
    assert "whole forward pass" in info.note


def test_shared_type_blocks_capture_their_own_outputs(remote, residual):
    model, path = residual
    _trusted(remote, path)
    x = np.array(load_digits("eval").inputs[3])
    got = remote.capture(x, ["block1.conv", "block2.conv", "block2"])
    for site in ("block1.conv", "block2.conv", "block2"):
        _, want = _hooked(model, site)
        np.testing.assert_allclose(got.activations[site], want[3], rtol=1e-5, atol=1e-5)
    assert not np.allclose(got.activations["block1.conv"], got.activations["block2.conv"])


def test_a_channel_ablation_equals_a_hand_written_hook(remote, residual):
    model, path = residual
    _trusted(remote, path)
    intact, out = _hooked(model, "block2.conv")
    unit = int(np.maximum(out, 0).mean(axis=(0, 2, 3)).argmax())  # one the ReLU passes
    logits, _ = _hooked(model, "block2.conv", _zero_channel(unit))
    result = remote.evaluate([Ablation("block2.conv", (unit,), "zero")])
    assert result.baseline_score == pytest.approx(_accuracy(intact), abs=1e-12)
    assert result.score == pytest.approx(_accuracy(logits), abs=1e-12)
    assert not np.allclose(logits, intact)
    assert result.unchanged == ()


def test_a_pickled_module_of_a_custom_class_opens_on_its_own_architecture(remote,
                                                                         tmp_path):
    model = own_models.trained(own_models.Wide)
    info, _ = _trusted(remote, _pickle(model, tmp_path / "wide.pt"))
    assert "wide.pt" in info.title and "features.0" in [la.name for la in info.layers]
    assert "not an nn.Sequential" in info.note
    logits, _ = _hooked(model, "features.0", _zero_channel(1))
    result = remote.evaluate([Ablation("features.0", (1,), "zero")])
    assert result.score == pytest.approx(_accuracy(logits), abs=1e-12)
    assert result.baseline_score > 0.6  # trained a little: the ablation means something


def test_a_pickled_sequential_resumes_from_its_children(remote, tmp_path):
    model = own_models.seeded(lambda: torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(256, 12), torch.nn.ReLU(),
        torch.nn.Linear(12, 10)))
    info, _ = _trusted(remote, _pickle(model, tmp_path / "seq.pt"))
    assert "nn.Sequential" in info.note and "only the layers after" in info.note
    logits, _ = _hooked(model, "2", _zero_channel(4))
    assert remote.evaluate([Ablation("2", (4,), "zero")]).score == \
        pytest.approx(_accuracy(logits), abs=1e-12)


def test_a_model_of_unguessable_input_asks_for_data_then_opens_on_it(remote, tmp_path):
    model = own_models.seeded(own_models.Rows)
    path = _pickle(model, tmp_path / "rows.pt")
    before = _state(remote)
    with pytest.raises(NeedsTrust) as asked:
        remote.open_checkpoint(path)
    with pytest.raises(NeedsData) as needs:
        remote.open_checkpoint(path, asked.value.sha256)
    assert needs.value.trusted_sha256 == asked.value.sha256 == needs.value.sha256
    assert "rows.pt reads rows of 5 numbers" in str(needs.value)
    assert _state(remote) == before
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).argmax(1).numpy()
    y[:10] = (y[:10] + 1) % 3  # a quarter wrong: 75 % right
    data = tmp_path / "rows.npz"
    np.savez(data, x=x, y=y)
    info = remote.open_checkpoint(path, needs.value.trusted_sha256, data=str(data))
    assert info.dataset_size == 40 and len(info.class_names) == 3
    assert remote.evaluate().score == pytest.approx(0.75)


def test_an_image_model_of_another_size_asks_for_a_spec_and_keeps_trust(remote, tmp_path):
    from core.files.preprocess import InputSpec

    path = _pickle(own_models.seeded(own_models.Colour), tmp_path / "colour.pt")
    with pytest.raises(NeedsTrust) as asked:
        remote.open_checkpoint(path)
    with pytest.raises(NeedsInputSpec) as needs:
        remote.open_checkpoint(path, asked.value.sha256)
    assert needs.value.guess.shape == (3, 32, 32)
    assert needs.value.trusted_sha256 == asked.value.sha256
    info = remote.open_checkpoint(path, needs.value.trusted_sha256, InputSpec(3, 32, 32))
    assert info.input_shape == (3, 32, 32) and "3×32×32" in info.title


def test_a_torchscript_whose_forward_fails_keeps_the_previous_model(remote, tmp_path):
    path = _script(own_models.seeded(own_models.Broken), tmp_path / "broken.pt")
    before = _state(remote)
    with pytest.raises(NeedsTrust) as asked:
        remote.open_checkpoint(path)
    with pytest.raises(ModelLoadError) as failed:
        remote.open_checkpoint(path, asked.value.sha256)
    message = str(failed.value)
    assert message.startswith("broken.pt could not run on two examples")
    assert "previous model stays" in message and "Traceback" not in message
    assert _state(remote) == before


def test_script_sites_in_process(tmp_path):
    """The mirror tree itself: stop_after, a skip, a scaled weight, the unit's weights
    and a gradient to the input (feature visualisation) work as on an eager module."""
    from core.adapters.script_sites import ScriptModel
    from core.adapters.torch_adapter import TorchAdapter

    model = own_models.seeded(own_models.Residual)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        script = torch.jit.load(_script(model, tmp_path / "r.pt"))
    adapter = TorchAdapter(ScriptModel(script, "r.pt"), "r.pt", (1, 16, 16))
    x = np.array(load_digits("eval").inputs[:4])
    stopped = adapter.run(x, capture=("block1",), stop_after="block1")
    assert stopped.outputs is None and stopped.activations["block1"].shape == (4, 6, 16, 16)
    skipped = adapter.run(x, ablations=(Ablation("block2", (), "skip"),))
    with torch.no_grad():
        h = torch.relu(model.stem(torch.from_numpy(x)))
        want = model.head(torch.flatten(model.pool(model.block1(h)), 1))
    np.testing.assert_allclose(skipped.outputs, want.numpy(), rtol=1e-5, atol=1e-5)
    halved = adapter.run(x, ablations=(Ablation("head", (), "scale", 0.5),))
    intact = adapter.run(x)
    bias = model.head.bias.detach().numpy()
    np.testing.assert_allclose(halved.outputs - bias, (intact.outputs - bias) * 0.5,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(adapter.run(x).outputs, intact.outputs)  # weight restored
    drawn = adapter.unit_weights("block1.conv", 2)  # the script's own weight tensors
    np.testing.assert_array_equal(np.stack(drawn.images),
                                  model.block1.conv.weight[2].detach().numpy())
    picture, trace = adapter.visualise("block2.conv", 1, steps=6)
    assert picture.shape == (1, 16, 16) and trace[-1] > trace[0]


def test_scripted_torch_layers_are_mirrored_with_their_settings(tmp_path):
    """A scripted nn.Sequential of torch layers: each site is the torch layer itself
    on the script's tensors (kind, parameter count), and an in-place ReLU after a
    captured layer does not overwrite the capture."""
    from core.adapters.script_sites import ScriptModel
    from core.adapters.torch_adapter import TorchAdapter

    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, stride=2), torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(64, 10, bias=False)).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        script = torch.jit.load(_script(model, tmp_path / "seq.pt"))
    adapter = TorchAdapter(ScriptModel(script, "seq.pt"), "seq.pt", (1, 16, 16))
    layers = {layer.name: layer for layer in adapter.layers()}
    assert [layers[n].kind for n in "012345"] == ["Conv2d", "BatchNorm2d", "ReLU",
                                                  "MaxPool2d", "Flatten", "Linear"]
    assert layers["0"].n_params == 40 and layers["5"].n_params == 640
    x = np.array(load_digits("eval").inputs[:3])
    with torch.no_grad():
        want = model[1](model[0](torch.from_numpy(x))).numpy()
        out = model(torch.from_numpy(x)).numpy()
    got = adapter.run(x, capture=("1",))
    np.testing.assert_allclose(got.activations["1"], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.outputs, out, rtol=1e-5, atol=1e-6)
    assert (want < 0).any()  # the ReLU would have changed it in place


def test_a_pickled_module_whose_class_is_missing_says_so(remote, tmp_path, monkeypatch):
    import importlib
    import sys

    source = tmp_path / "gone_models.py"
    source.write_text("import torch\n\nclass Gone(torch.nn.Module):\n"
                      "    def __init__(self):\n        super().__init__()\n"
                      "        self.fc = torch.nn.Linear(256, 10)\n\n"
                      "    def forward(self, x):\n        return self.fc(x.flatten(1))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    gone = importlib.import_module("gone_models")
    path = _pickle(gone.Gone().eval(), tmp_path / "gone.pt")
    monkeypatch.delitem(sys.modules, "gone_models")
    before = _state(remote)
    with pytest.raises(NeedsTrust) as asked:
        remote.open_checkpoint(path)
    assert "gone_models.Gone" in asked.value.unsafe_globals
    with pytest.raises(ModelLoadError, match="whose code \\(such as gone_models.Gone\\) is "
                                             "not available here"):
        remote.open_checkpoint(path, asked.value.sha256)
    assert _state(remote) == before


def test_a_trusted_copy_of_a_built_in_token_model_reads_its_own_data(remote, tmp_path):
    from core.zoo import ZOO

    torch.manual_seed(0)
    model = ZOO["induction_transformer"].builder().eval()
    info, _ = _trusted(remote, _pickle(model, tmp_path / "letters.pt"))
    assert info.dataset_name.startswith("induction") and info.input_shape == (25,)
    assert "its own architecture" in info.title
    assert remote.evaluate().n > 0


def test_a_traced_model_has_its_sites_too(tmp_path):
    from core.adapters.script_sites import ScriptModel
    from core.adapters.torch_adapter import TorchAdapter

    model = own_models.seeded(own_models.Residual)
    x = np.array(load_digits("eval").inputs[:5])
    path = tmp_path / "traced.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings
        torch.jit.save(torch.jit.trace(model, torch.from_numpy(x)), str(path))
        script = torch.jit.load(str(path))
    adapter = TorchAdapter(ScriptModel(script, "traced.pt"), "traced.pt", (1, 16, 16))
    got = adapter.run(x, capture=("block1.act", "block2.act"))
    for site in ("block1.act", "block2.act"):
        _, want = _hooked(model, site)
        np.testing.assert_allclose(got.activations[site], want[:5], rtol=1e-5, atol=1e-6)
