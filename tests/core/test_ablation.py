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
    assert result.score == pytest.approx(float((full.argmax(1) == dataset.labels).mean()))


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


def test_unit_mask_is_the_one_definition_of_an_ablation():
    mean = np.arange(2 * 4 * 3, dtype=np.float32).reshape(4, 3, 2)[:, :, 0].T  # (3, 4)
    abls = (Ablation("s", (1,)), Ablation("s", (2, 3), "mean"), Ablation("t", (0,)),
            Ablation("s", mode="skip"))
    keep, fill = ablation.unit_mask(abls, "s", (3, 4), 1, {"s": mean})
    assert keep.shape == (1, 4) and keep.tolist() == [[1, 0, 0, 0]]
    x = np.ones((3, 4), np.float32) * 7
    out = x * keep + fill
    assert out[:, 0].tolist() == [7, 7, 7] and not out[:, 1].any()
    np.testing.assert_array_equal(out[:, 2:], mean[:, 2:])
    # A shorter sequence takes the mean's first positions; a later ablation wins.
    keep, fill = ablation.unit_mask(abls + (Ablation("s", (2,)),), "s", (2, 4), 1,
                                    {"s": mean})
    assert fill.shape == (2, 4) and not fill[:, 2].any() and fill[1, 3] == mean[1, 3]
    keep, fill = ablation.unit_mask((Ablation("s", (0,)),), "s", (5, 2, 2), 0)
    assert keep.shape == fill.shape == (5, 1, 1) and not fill.any()
    with pytest.raises(AblationError, match="unit 5 does not exist"):
        ablation.unit_mask((Ablation("s", (5,)),), "s", (5, 2, 2), 0)
    with pytest.raises(AblationError, match="No dataset mean"):
        ablation.unit_mask((Ablation("s", (1,), "mean"),), "s", (5,), 0)
    keeps, fills = ablation.sweep_masks("s", (0, 3), "zero", (4, 2), 0)
    assert not fills.any() and keeps.shape == (2, 4, 1) and keeps[:, :, 0].tolist() == [[0, 1, 1, 1], [1, 1, 1, 0]]
