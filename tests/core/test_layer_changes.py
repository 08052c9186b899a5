"""Whole-layer changes: switch a layer off, skip it, scale its weights (issue #5)."""

import copy

import numpy as np
import pytest
import torch

from core import ablation
from core.ablation import Ablation
from core.adapters.torch_adapter import TorchAdapter
from core.errors import AblationError


def test_scaling_weights_equals_edited_model_and_is_undone(adapter, dataset, session):
    x = np.array(dataset.inputs)
    before = adapter.model.fc1.weight.detach().clone()
    scaled = adapter.run(x, ablations=(Ablation("fc1", mode="scale", value=0.5),)).outputs
    edited = copy.deepcopy(adapter.model)
    with torch.no_grad():
        edited.fc1.weight.mul_(0.5)
    expected = TorchAdapter(edited, "edited", adapter.input_shape).run(x).outputs
    np.testing.assert_allclose(scaled, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(adapter.model.fc1.weight, before)  # restored after the run
    result = session.evaluate([Ablation("fc1", mode="scale", value=0.5)])
    assert result.resumed_from == "flatten"  # fc1 itself re-runs


def test_skip_passes_the_input_through(adapter, dataset, session):
    x = np.array(dataset.inputs[:50])
    skipped = adapter.run(x, capture=("relu2",), ablations=(Ablation("relu2", mode="skip"),))
    conv2 = adapter.run(x, capture=("conv2",)).activations["conv2"]
    np.testing.assert_array_equal(skipped.activations["relu2"], conv2)
    assert session.evaluate([Ablation("relu2", mode="skip")]).score < 1.0


def test_skip_refuses_a_shape_change(session):
    with pytest.raises(AblationError, match="cannot be skipped"):
        session.evaluate([Ablation("conv2", mode="skip")])


def test_whole_layer_off_is_all_units(session):
    result = session.evaluate([Ablation("fc1", tuple(range(64)))])
    assert result.score < 0.3


def test_layer_change_replaces_the_previous_one():
    abls = ablation.toggle((), "fc1", 3, "zero")
    abls = ablation.replace_layer_change(abls, Ablation("fc1", mode="scale", value=0.5))
    abls = ablation.replace_layer_change(abls, Ablation("fc1", mode="skip"))
    assert [a.label() for a in abls] == ["fc1:3 (zero)", "fc1: skipped"]
    abls = ablation.replace_layer_change(abls, Ablation("fc1", mode="scale", value=1.0))
    assert [a.label() for a in abls] == ["fc1:3 (zero)"]
    assert ablation.with_mode((Ablation("fc2", mode="skip"),), "mean") == (
        Ablation("fc2", mode="skip"),)
