"""The ONNX adapter gives the torch adapter's numbers on the shipped CNN exported to ONNX
— the same activations and the same ablated accuracies (issue #6)."""


import numpy as np
import pytest

from core.ablation import Ablation
from core.adapters.onnx_adapter import OnnxAdapter
from core.model import ModelAdapter, missing_methods
from core.session import Session

ABLATIONS = ([], [Ablation("conv2", (3, 7))], [Ablation("fc1", (1, 5), "mean")],
             [Ablation("conv1", tuple(range(8)))], [Ablation("relu2", (0, 4), "mean")])


def test_both_adapters_conform(adapter, onnx_path):
    onnx_adapter = OnnxAdapter(str(onnx_path), "x")
    for obj in (adapter, onnx_adapter):
        assert isinstance(obj, ModelAdapter) and not missing_methods(obj)
    assert [i.name for i in onnx_adapter.layers()] == [i.name for i in adapter.layers()]
    assert onnx_adapter.input_shape == adapter.input_shape


def test_same_activations(adapter, dataset, onnx_path):
    x = np.array(dataset.inputs[:32])
    sites = [i.name for i in adapter.layers()]
    here = adapter.run(x, capture=sites)
    there = OnnxAdapter(str(onnx_path), "x").run(x, capture=sites)
    for site in sites:
        np.testing.assert_allclose(there.activations[site], here.activations[site],
                                   rtol=1e-4, atol=1e-4)


def test_same_ablated_accuracies(onnx_path):
    torch_session, onnx_session = Session(), Session()
    torch_session.open_model("digits_cnn")
    info = onnx_session.open_checkpoint(str(onnx_path))
    assert "ONNX" in info.title
    for abls in ABLATIONS:
        assert onnx_session.evaluate(abls).score == pytest.approx(
            torch_session.evaluate(abls).score), abls
    sweep = onnx_session._evaluator.sweep("conv2", range(4))
    expected = [torch_session.evaluate([Ablation("conv2", (u,))]).score for u in range(4)]
    np.testing.assert_allclose(sweep.score, expected)


def test_a_model_of_another_input_size_asks_once_then_runs(tmp_path):
    from core.files.checkpoints import NeedsInputSpec
    from tests.core.mnist_like import make

    path = tmp_path / "mnist_like.onnx"
    spec = make(path)
    session = Session()
    session.open_model("digits_cnn")
    with pytest.raises(NeedsInputSpec) as caught:
        session.open_checkpoint(str(path))
    assert caught.value.guess.shape == (1, 28, 28) and caught.value.sha256
    assert session.info.name == "digits_cnn"  # nothing changed while asking
    info = session.open_checkpoint(str(path), spec=spec)
    assert "28×28" in info.title and session.evaluate().score > 0.9
    image = session.sample(0)
    assert session.capture(np.array(session.dataset.inputs[0]), ["1"]).activations["1"].shape \
        == (8, 24, 24)
    assert image.model_input.shape == (1, 28, 28)
