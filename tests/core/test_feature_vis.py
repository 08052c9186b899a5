"""Feature visualisation: an input optimised to excite one unit (issue #13)."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from core.adapters.torch_adapter import TorchAdapter
from core.errors import Cancelled, InputError
from core.jobs import CancelToken


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Batch-of-one steps gain nothing from intra-op threads, and on a loaded machine
    (CI, shared cores) threads spin-waiting on each other make them ~20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(session):
    inputs = np.asarray(session.dataset.inputs, np.float32)
    return inputs, (float(inputs.min()), float(inputs.max()))


def _dataset_max(session, site: str) -> np.ndarray:
    """Each unit's mean over positions, maximised over the evaluation inputs."""
    acts = session._evaluator.site_output(site)
    return acts.reshape(len(acts), acts.shape[1], -1).mean(axis=2).max(axis=0)


def _objective(adapter, site: str, unit: int, x: np.ndarray) -> float:
    out = adapter.run(x[None], capture=[site]).activations[site]
    return float(out[0, unit].mean())


@pytest.mark.parametrize("site, units, steps", [
    ("conv1", range(16), 32),        # every channel
    ("conv2", range(0, 32, 2), 48),  # every other channel
])
def test_beats_the_dataset_on_conv_channels(session, adapter, data, site, units, steps):
    best = _dataset_max(session, site)
    for unit in units:
        # Weak penalties (the objective over a tenth of the unit's best): what the
        # session falls back to when the readable setting cannot beat the data.
        _, trace = adapter.visualise(site, unit, steps=steps, value_range=data[1],
                                     scale=0.1 * abs(best[unit]))
        assert trace[-1] > best[unit], (site, unit)


def test_beats_the_dataset_on_a_firing_dense_neuron(session, adapter, data):
    best = _dataset_max(session, "fc1")
    unit = int(best.argmax())
    assert best[unit] > 0  # it fires
    x, trace = adapter.visualise("fc1", unit, value_range=data[1])
    assert x.shape == (1, 16, 16) and x.dtype == np.float32
    assert trace.shape == (256,) and trace.dtype == np.float32
    assert trace[-1] > best[unit]
    # The last entry is the objective of the returned input itself.
    assert trace[-1] == pytest.approx(_objective(adapter, "fc1", unit, x), rel=1e-4)
    lo, hi = data[1]
    assert lo <= x.min() and x.max() <= hi


def test_same_seed_same_input(adapter, data):
    a = adapter.visualise("conv2", 3, steps=16, seed=1, value_range=data[1])
    b = adapter.visualise("conv2", 3, steps=16, seed=1, value_range=data[1])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_leaves_grads_and_hooks_as_they_were(adapter, data):
    model = adapter.model
    hooks = _hooks(model)
    model.conv2.bias.requires_grad_(False)  # a mixed state, to see it restored
    try:
        flags = [p.requires_grad for p in model.parameters()]
        adapter.visualise("pool2", 1, steps=8, value_range=data[1])
        assert [p.requires_grad for p in model.parameters()] == flags
        assert all(p.grad is None for p in model.parameters())
        assert _hooks(model) == hooks and not model.training
    finally:
        model.conv2.bias.requires_grad_(True)


def test_cancels_through_the_token(adapter, data):
    seen = []

    def progress(fraction, text):
        seen.append(fraction)
        if len(seen) == 2:
            token.cancel()

    token = CancelToken(progress)
    hooks = _hooks(adapter.model)
    flags = [p.requires_grad for p in adapter.model.parameters()]
    with pytest.raises(Cancelled):
        adapter.visualise("conv1", 0, steps=256, value_range=data[1], token=token)
    assert len(seen) == 2 and seen[-1] < 0.2
    assert _hooks(adapter.model) == hooks
    assert [p.requires_grad for p in adapter.model.parameters()] == flags


def test_refuses_token_models_and_unknown_layers(adapter, data):
    model = nn.Sequential(OrderedDict([("embed", nn.Embedding(10, 4)),
                                       ("fc", nn.Linear(4, 10))]))
    tokens = TorchAdapter(model, "tokens", (5,), np.int64)
    with pytest.raises(InputError, match="token"):
        tokens.visualise("fc", 0)
    with pytest.raises(InputError, match="no layer"):
        adapter.visualise("conv9", 0, value_range=data[1])
    with pytest.raises(InputError, match="no unit 40"):
        adapter.visualise("conv2", 40, steps=4, value_range=data[1])
    assert _hooks(adapter.model) == 0


def test_keeps_the_torch_thread_count(adapter, data):
    before = torch.get_num_threads()
    adapter.visualise("conv1", 1, steps=4, value_range=data[1])
    assert torch.get_num_threads() == before


def test_the_window_s_call_beats_the_dataset_on_every_unit_it_tries():
    """Session.feature_visualisation (what the unit page asks for), with the penalties
    that keep the picture readable, still beats the best evaluation example."""
    from core.session import Session

    s = Session()
    s.open_model("digits_cnn")
    for site, units in (("conv1", range(0, 16, 3)), ("conv2", range(0, 32, 4)),
                        ("fc1", (3, 7))):
        for unit in units:
            vis = s.feature_visualisation(site, unit)
            assert vis.exceeded, (site, unit, vis.activation, vis.dataset_max)
            assert vis.picture.shape == (16, 16) and 0 <= vis.picture.min() <= 1
