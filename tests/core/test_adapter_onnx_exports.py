"""Common ONNX exports open and evaluate instead of failing with the runtime's errors
(issue 10): a batch fixed at 1, ``x.view(x.size(0), -1)``, float16 / bfloat16 / int64
inputs, and classifiers with fewer classes than the dataset has labels."""

import copy
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto as T
from onnx import helper as h
from torch import nn

from core.ablation import Ablation
from core.adapters.onnx_adapter import OnnxAdapter
from core.analysis.cache import ActivationCache
from core.analysis.evaluate import Evaluator
from core.datasets import load_digits
from core.errors import ModelLoadError

PLUMBING = {"Shape", "Gather", "Concat", "Unsqueeze", "Cast", "Constant", "ConstantOfShape"}


class ViewNet(nn.Module):
    """A tutorial's CNN: flattening by ``view(x.size(0), -1)``."""

    def __init__(self, classes=10):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16 * 16, classes)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


class IntInput(nn.Module):
    """Reads whole numbers (the digits' 0..16 intensities) as int64."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.fc = nn.Linear(256, 10)

    def forward(self, x):
        return self.fc(torch.flatten(x.float() / 16.0, 1))


@pytest.fixture(scope="module")
def digits():
    return load_digits("eval")


def _export(module, path, example, dynamic=False):
    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), str(path), dynamo=False,
                          input_names=["input"], output_names=["logits"],
                          **({"dynamic_axes": {"input": {0: "n"}, "logits": {0: "n"}}}
                             if dynamic else {}))
    return str(path)


def _check_runs(adapter, torch_model, x, torch_x, rtol=1e-4):
    layers = adapter.layers()
    assert layers and not PLUMBING & {i.kind for i in layers}
    assert layers[0].kind == "Conv" if isinstance(torch_model, ViewNet) else True
    sites = [i.name for i in layers]
    run = adapter.run(x, capture=sites)
    with torch.inference_mode():
        expected = torch_model(torch_x).float().numpy()
    assert run.outputs.dtype == np.float32 and run.outputs.shape == expected.shape
    np.testing.assert_allclose(run.outputs, expected, rtol=rtol, atol=rtol)
    for info in layers:
        act = run.activations[info.name]
        assert act.dtype == np.float32 and act.shape == (len(x), *info.output_shape)
    assert all(run.report.fired.values())
    return run


@pytest.mark.parametrize("dynamic", [False, True])
def test_view_flatten_export_fixed_or_free_batch(tmp_path, digits, dynamic):
    model = ViewNet()
    path = _export(model, tmp_path / "view.onnx", torch.zeros(1, 1, 16, 16), dynamic)
    adapter = OnnxAdapter(path, "view.onnx")
    assert adapter.batch == (None if dynamic else 1)
    assert [i.name for i in adapter.layers()] == ["conv", "Relu", "Reshape", "fc"]
    x = np.array(digits.inputs[:37])  # not a multiple of any chunk size
    _check_runs(adapter, model, x, torch.from_numpy(x))
    evaluator = Evaluator(adapter, digits, ActivationCache(1 << 26))
    result = evaluator.evaluate([Ablation("conv", (1,), "mean")])
    assert 0 <= result.score <= 1 and np.isfinite(result.loss)
    sweep = evaluator.sweep("conv", range(4))
    manual = [evaluator.evaluate([Ablation("conv", (u,))]).score for u in range(4)]
    np.testing.assert_array_equal(sweep.score, manual)


def test_float16_export(tmp_path, digits):
    model = ViewNet().half()
    path = _export(copy.deepcopy(model), tmp_path / "half.onnx",
                   torch.zeros(1, 1, 16, 16, dtype=torch.float16))
    adapter = OnnxAdapter(path, "half.onnx")
    x = np.array(digits.inputs[:9])
    run = _check_runs(adapter, model, x, torch.from_numpy(x).half(), rtol=2e-2)
    zeroed = adapter.run(x, capture=("conv",), ablations=(Ablation("conv", (2,)),))
    assert not zeroed.activations["conv"][:, 2].any() and zeroed.activations["conv"][:, 1].any()
    assert not np.array_equal(zeroed.outputs, run.outputs)
    result = Evaluator(adapter, digits, ActivationCache(1 << 26)).evaluate()
    assert 0 <= result.score <= 1 and np.isfinite(result.loss)


def test_int64_input(tmp_path, digits):
    model = IntInput()
    path = _export(model, tmp_path / "int.onnx", torch.zeros(1, 1, 16, 16, dtype=torch.int64),
                   dynamic=True)
    adapter = OnnxAdapter(path, "int.onnx")
    assert adapter.input_dtype == np.int64
    whole = np.rint(np.array(digits.inputs[:12]) * 16)  # floats holding whole numbers
    run = adapter.run(whole)
    with torch.inference_mode():
        expected = model(torch.from_numpy(whole).long()).numpy()
    np.testing.assert_allclose(run.outputs, expected, rtol=1e-5, atol=1e-5)
    result = Evaluator(adapter, digits, ActivationCache(1 << 26)).evaluate()
    assert np.isfinite(result.loss)


def _bf16_model(path, arithmetic):
    """bfloat16 in; cast to float32 and classified, or (``arithmetic``) computed in
    bfloat16, which onnxruntime's CPU kernels lack."""
    rng = np.random.default_rng(0)
    nodes = [h.make_node("Flatten", ["x"], ["flat"], name="/flatten/Flatten")]
    if arithmetic:
        w = h.make_tensor("w", T.BFLOAT16, [256, 10], [0] * 2560)
        nodes += [h.make_node("MatMul", ["flat", "w"], ["y"], name="/fc/MatMul"),
                  h.make_node("Cast", ["y"], ["out"], to=T.FLOAT, name="/out/Cast")]
    else:
        w = h.make_tensor("w", T.FLOAT, [256, 10], rng.normal(size=2560).tolist())
        nodes += [h.make_node("Cast", ["flat"], ["flat32"], to=T.FLOAT, name="/cast/Cast"),
                  h.make_node("MatMul", ["flat32", "w"], ["out"], name="/fc/MatMul")]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.BFLOAT16, ["n", 1, 16, 16])],
                         [h.make_tensor_value_info("out", T.FLOAT, ["n", 10])], [w])
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), str(path))
    return str(path), onnx.numpy_helper.to_array(w) if not arithmetic else None


def test_bfloat16_input_where_the_runtime_can(tmp_path, digits):
    path, w = _bf16_model(tmp_path / "bf16.onnx", arithmetic=False)
    adapter = OnnxAdapter(path, "bf16.onnx")
    x = np.array(digits.inputs[:8])
    run = adapter.run(x, capture=[i.name for i in adapter.layers()])
    rounded = torch.from_numpy(x).bfloat16().float().numpy()  # what the graph reads
    np.testing.assert_allclose(run.outputs, rounded.reshape(8, -1) @ w, rtol=1e-4, atol=1e-4)
    assert all(a.dtype == np.float32 for a in run.activations.values())
    path, _ = _bf16_model(tmp_path / "bf16_matmul.onnx", arithmetic=True)
    with pytest.raises(ModelLoadError) as caught:
        OnnxAdapter(path, "bf16_matmul.onnx").layers()
    assert str(caught.value) == (
        "bf16_matmul.onnx uses a MatMul layer on bfloat16 numbers, which the ONNX runtime "
        "on this computer cannot compute; export it in float32; it was not opened.")


@pytest.mark.parametrize("classes", [2, 3, 12])
def test_classifiers_with_any_number_of_classes(tmp_path, digits, classes):
    model = ViewNet(classes)
    path = _export(model, tmp_path / "k.onnx", torch.zeros(1, 1, 16, 16), dynamic=True)
    adapter = OnnxAdapter(path, "k.onnx")
    evaluator = Evaluator(adapter, digits, ActivationCache(1 << 26))
    result = evaluator.evaluate()
    logits = evaluator.baseline_logits()
    assert logits.shape == (len(digits), classes)
    answerable = digits.labels < classes
    right = (logits.argmax(1) == digits.labels) & answerable
    assert result.score == pytest.approx(right.mean())
    assert result.score <= answerable.mean()
    assert np.isfinite(result.loss) and result.loss > 0
    assert result.per_group.shape == (10,)
    assert np.all(result.per_group[classes:] == 0)
    sweep = evaluator.sweep("fc", range(classes), "mean")
    assert np.all(np.isfinite(sweep.loss))
