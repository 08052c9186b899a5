"""Ablations do what they claim: zero equals removed weights, mean uses the dataset mean."""

import copy

import numpy as np
import pytest
import torch

from core import ablation
from core.ablation import Ablation
from core.adapters.torch_adapter import TorchAdapter
from core.errors import AblationError


def test_zero_ablation_equals_zeroed_weights(adapter, dataset):
    channels = (3, 7, 20)
    x = np.array(dataset.inputs)
    ablated = adapter.run(x, ablations=(Ablation("conv2", channels),)).outputs
    surgery = copy.deepcopy(adapter.model)
    with torch.no_grad():
        surgery.conv2.weight[list(channels)] = 0
        surgery.conv2.bias[list(channels)] = 0
    expected = TorchAdapter(surgery, "surgery", adapter.input_shape).run(x).outputs
    np.testing.assert_allclose(ablated, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(ablated, adapter.run(x).outputs)


def test_mean_ablation_uses_the_dataset_mean(session, adapter, dataset):
    evaluator = session._evaluator
    mean = evaluator.means(["conv1"])["conv1"]
    all_conv1 = adapter.run(np.array(dataset.inputs), capture=("conv1",)).activations["conv1"]
    np.testing.assert_allclose(mean, all_conv1.mean(axis=0), rtol=1e-5, atol=1e-6)
    capture = session.capture(dataset.inputs[5], ["conv1"], [Ablation("conv1", (2,), "mean")])
    np.testing.assert_allclose(capture.activations["conv1"][2], mean[2], rtol=1e-6)
    np.testing.assert_allclose(capture.activations["conv1"][3], all_conv1[5, 3], rtol=1e-5)


def test_resumed_evaluation_equals_full_forward(session, adapter, dataset):
    abls = (Ablation("conv2", (1, 4, 9)), Ablation("fc1", (0, 5), "mean"))
    result = session.evaluate(abls)
    assert result.resumed_from == "conv2"
    means = session._evaluator.means(["fc1"])
    full = adapter.run(np.array(dataset.inputs), ablations=abls, means=means).outputs
    assert result.accuracy == pytest.approx(float((full.argmax(1) == dataset.labels).mean()))


def test_unit_that_never_fires_is_reported(session):
    # Find a relu1 channel that is zero on every eval input, or prove the check works
    # with a unit already zeroed upstream.
    abls = (Ablation("conv1", (0,)), Ablation("relu1", (0,)))
    result = session.evaluate(abls)
    assert "relu1:0 (zero)" in result.unchanged
    assert "conv1:0 (zero)" not in result.unchanged


def test_bad_ablations_are_user_errors(session, dataset):
    with pytest.raises(AblationError, match="no layer named"):
        session.evaluate([Ablation("conv9", (0,))])
    with pytest.raises(AblationError, match="16 channels"):
        session.evaluate([Ablation("conv1", (16,))])


def test_toggle_adds_and_removes():
    abls = ablation.toggle((), "conv1", 3, "zero")
    abls = ablation.toggle(abls, "conv1", 5, "zero")
    assert abls == (Ablation("conv1", (3, 5)),)
    abls = ablation.toggle(abls, "conv1", 3, "zero")
    assert abls == (Ablation("conv1", (5,)),)
    assert ablation.toggle(abls, "conv1", 5, "zero") == ()
    assert ablation.parse("conv2:1,2", "mean") == Ablation("conv2", (1, 2), "mean")
