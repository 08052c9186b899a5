"""Captured activations are the real ones, and hooks never leak."""

import numpy as np
import torch

from core.ablation import Ablation


def _manual_forward(model, x):
    """Layer by layer, without hooks: the ground truth for capture."""
    outs = {}
    h = torch.from_numpy(x)
    with torch.inference_mode():
        for name, module in model.named_children():
            h = module(h)
            outs[name] = h.numpy().copy()
    return outs


def test_capture_equals_manual_forward(adapter, dataset):
    x = np.array(dataset.inputs[:20])
    sites = [info.name for info in adapter.layers()]
    result = adapter.run(x, capture=sites)
    manual = _manual_forward(adapter.model, x)
    assert set(result.activations) == set(manual)
    for site in sites:
        np.testing.assert_allclose(result.activations[site], manual[site], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.outputs, manual["fc2"], rtol=1e-5, atol=1e-6)
    assert all(result.report.fired.values())


def test_stop_after_skips_the_rest(adapter, dataset):
    result = adapter.run(np.array(dataset.inputs[:4]), capture=("conv2",), stop_after="conv2")
    assert result.outputs is None
    assert result.activations["conv2"].shape == (4, 32, 8, 8)


def test_no_hooks_remain_after_many_runs(adapter, dataset):
    x = np.array(dataset.inputs[:2])
    for i in range(1000):
        adapter.run(x, capture=("conv1", "fc1"), ablations=(Ablation("conv2", (i % 32,)),),
                    stop_after="fc1" if i % 2 else None)
    for name, module in adapter.model.named_modules():
        assert not module._forward_hooks, f"hook left on {name!r}"
        assert not module._forward_pre_hooks, f"pre-hook left on {name!r}"


def test_hooks_removed_when_forward_raises(adapter):
    bad = np.zeros((1, 3, 16, 16), np.float32)  # wrong channel count: conv1 raises
    try:
        adapter.run(bad, capture=("conv1", "conv2"))
    except RuntimeError:
        pass
    else:
        raise AssertionError("the wrong-shaped input should have failed")
    assert all(not m._forward_hooks for m in adapter.model.modules())


def test_layers_describe_the_model(adapter):
    layers = {info.name: info for info in adapter.layers()}
    assert layers["conv1"].output_shape == (16, 16, 16)  # maps >= 12x12 to be legible
    assert layers["conv1"].n_units == 16 and layers["conv1"].view == "channels"
    assert layers["fc1"].n_units == 64 and layers["fc1"].view == "neurons"
    assert layers["conv2"].n_params == 16 * 32 * 9 + 32
