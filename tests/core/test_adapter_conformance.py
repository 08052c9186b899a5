"""Both adapters implement the whole protocol and agree: the same sweeps, the same
hook report (which sites ran, which ablations changed nothing), and a torch sweep's
hook is scoped and fire-checked like every other hook (issue 11)."""

import warnings

import numpy as np
import pytest
import torch

from core.ablation import Ablation
from core.adapters.onnx_adapter import OnnxAdapter
from core.analysis.cache import ActivationCache
from core.analysis.evaluate import Evaluator
from core.datasets import load_digits
from core.errors import AblationError
from core.model import ModelAdapter, missing_methods
from core.zoo.loading import open_zoo


@pytest.fixture(scope="module")
def digits():
    return load_digits("eval")


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    torch_adapter = open_zoo("digits_cnn")
    path = tmp_path_factory.mktemp("onnx") / "digits_cnn.onnx"
    with warnings.catch_warnings():  # the legacy exporter warns that it is legacy
        warnings.simplefilter("ignore")
        torch.onnx.export(torch_adapter.model, (torch.zeros(1, 1, 16, 16),), str(path),
                          dynamo=False, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    return torch_adapter, OnnxAdapter(str(path), "digits_cnn.onnx")


def test_both_adapters_have_every_protocol_member(both):
    for adapter in both:
        assert isinstance(adapter, ModelAdapter)
        assert missing_methods(adapter) == []

    class Partial:  # what a third-party adapter that forgot sweeps looks like
        name, input_shape = "p", (1,)

        def layers(self): ...
        def run(self, *a): ...
        def resume_point(self, *a): ...
        def run_from(self, *a): ...

    assert missing_methods(Partial()) == ["run_sweep"]
    assert not isinstance(Partial(), ModelAdapter)


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_torch_and_onnx_sweeps_agree(both, digits, mode):
    torch_eval, onnx_eval = (Evaluator(a, digits, ActivationCache(1 << 28)) for a in both)
    for site, units in (("conv1", range(16)), ("conv2", range(0, 32, 3)), ("fc1", range(0, 64, 5)),
                        ("relu2", range(0, 32, 7))):
        here = torch_eval.sweep(site, units, mode)
        there = onnx_eval.sweep(site, units, mode)
        np.testing.assert_allclose(there.score, here.score, atol=1.5 / len(digits),
                                   err_msg=f"{site} {mode}")
        np.testing.assert_allclose(there.loss, here.loss, rtol=1e-3, atol=1e-4)
        assert here.score.min() < here.baseline_score  # some unit matters


def test_torch_and_onnx_report_the_same_hooks(both, digits):
    torch_adapter, onnx_adapter = both
    x = np.array(digits.inputs[:64])
    mean = torch_adapter.run(np.array(digits.inputs), capture=("fc1",)).activations["fc1"]
    cases = [
        # relu1:0 follows a zeroed conv1:0, so it changes nothing; conv1:0 does.
        ((Ablation("conv1", (0,)), Ablation("relu1", (0,))), ("fc1",)),
        ((Ablation("conv2", (3, 7)), Ablation("fc1", (1, 5), "mean")), ("conv2", "relu3")),
        ((Ablation("relu3", (2,), "mean"), Ablation("relu3", (4,))), ()),
    ]
    for ablations, capture in cases:
        here = torch_adapter.run(x, capture, ablations, {"fc1": mean.mean(0),
                                                          "relu3": np.zeros(64, np.float32)})
        there = onnx_adapter.run(x, capture, ablations, {"fc1": mean.mean(0),
                                                          "relu3": np.zeros(64, np.float32)})
        assert there.report.fired == here.report.fired
        assert all(there.report.fired.values())
        assert there.report.unchanged == here.report.unchanged, ablations
        np.testing.assert_allclose(there.outputs, here.outputs, rtol=1e-4, atol=1e-4)
    unchanged = onnx_adapter.run(x, (), cases[0][0]).report.unchanged
    assert unchanged == ("relu1:0 (zero)",)


def _hooks_left(model):
    return [name for name, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks]


def test_sweep_hooks_are_scoped(both, digits):
    adapter = both[0]
    x = np.array(digits.inputs[:4])
    for i in range(100):
        adapter.run_sweep("relu1" if i % 2 else "conv2", (i % 16, (i + 1) % 16), "zero", {}, x)
    assert _hooks_left(adapter.model) == []
    with pytest.raises(AblationError, match="unit 40 does not exist"):
        adapter.run_sweep("conv2", (1, 40), "zero", {}, x)
    assert _hooks_left(adapter.model) == []
    with pytest.raises(AblationError, match="No dataset mean"):
        adapter.run_sweep("fc1", (1,), "mean", {}, x)
    assert _hooks_left(adapter.model) == []


def test_a_sweep_hook_that_never_fires_is_an_error(both, digits):
    adapter = both[0]
    pool2 = adapter.run(np.array(digits.inputs[:4]), capture=("pool2",)).activations["pool2"]
    # Resuming after conv1 means conv1 never runs: silently intact numbers otherwise.
    with pytest.raises(RuntimeError, match="never fired"):
        adapter.run_sweep("conv1", (0, 1), "zero", {}, pool2, resume="pool2")
    assert _hooks_left(adapter.model) == []


def test_sweep_rows_equal_single_runs_on_both(both, digits):
    x = np.array(digits.inputs[:40])
    for adapter in both:
        mean = adapter.run(x, capture=("conv2",)).activations["conv2"].mean(0)
        swept = adapter.run_sweep("conv2", (0, 9, 31), "mean", {"conv2": mean}, x)
        assert swept.shape == (3, 40, 10) and swept.dtype == np.float32
        for row, unit in zip(swept, (0, 9, 31)):
            single = adapter.run(x, ablations=(Ablation("conv2", (unit,), "mean"),),
                                 means={"conv2": mean}).outputs
            np.testing.assert_allclose(row, single, rtol=1e-5, atol=1e-5)
