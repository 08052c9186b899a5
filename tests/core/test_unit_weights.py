"""A unit's own weights as pictures, and its direct weights to the classes (issue #13)."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from core.adapters.torch_adapter import TorchAdapter
from core.zoo.induction import VOCAB
from core.zoo.loading import open_zoo


def _w(module: nn.Module, name: str = "weight") -> np.ndarray:
    return getattr(module, name).detach().numpy()


@pytest.fixture(scope="module")
def cnn(adapter):
    return adapter.model


def test_first_conv_kernels_are_the_module_weights(adapter, cnn):
    for unit in (0, 7, 15):
        drawn = adapter.unit_weights("conv1", unit)
        assert drawn.kind == "kernels"
        assert drawn.titles == ("input channel 0",)
        assert len(drawn.images) == 1 and drawn.images[0].dtype == np.float32
        np.testing.assert_array_equal(drawn.images[0], _w(cnn.conv1)[unit, 0])


def test_a_relu_or_pool_channel_has_its_convs_weights(adapter):
    conv = adapter.unit_weights("conv1", 4)
    for site in ("relu1", "pool1"):
        drawn = adapter.unit_weights(site, 4)
        np.testing.assert_array_equal(drawn.images[0], conv.images[0])
        assert "conv1" in drawn.caption


def test_second_conv_tiles_are_weights_onto_the_previous_channels(adapter, cnn):
    drawn = adapter.unit_weights("conv2", 5)
    assert drawn.kind == "kernels" and len(drawn.images) == 16
    np.testing.assert_array_equal(np.stack(drawn.images), _w(cnn.conv2)[5])
    assert drawn.titles[3] == "pool1 ch 3"
    assert "pool1" in drawn.caption and "not onto pixels" in drawn.caption
    np.testing.assert_array_equal(np.stack(adapter.unit_weights("relu2", 5).images),
                                  _w(cnn.conv2)[5])


def test_dense_neuron_on_a_flattened_map_is_one_tile_per_channel(adapter, cnn):
    for site in ("fc1", "relu3"):
        drawn = adapter.unit_weights(site, 9)
        assert drawn.kind == "incoming" and len(drawn.images) == 32
        np.testing.assert_array_equal(np.stack(drawn.images),
                                      _w(cnn.fc1)[9].reshape(32, 4, 4))
        assert drawn.titles[0] == "pool2 ch 0"


def test_dense_neuron_on_dense_features_says_how_it_is_wrapped(adapter, cnn):
    drawn = adapter.unit_weights("fc2", 3)
    assert drawn.images[0].shape == (8, 8)
    np.testing.assert_array_equal(drawn.images[0].reshape(-1), _w(cnn.fc2)[3])
    assert "no spatial meaning" in drawn.caption
    assert adapter.unit_weights("flatten", 0) is None
    assert adapter.unit_weights("no_such_layer", 0) is None
    assert adapter.unit_weights("conv1", 16) is None


def test_lesson_mlp_neuron_is_drawn_as_the_input_image():
    from core.lessons.training import _mlp

    torch.manual_seed(0)
    model = _mlp(16)
    adapter = TorchAdapter(model, "mlp", (1, 16, 16))
    drawn = adapter.unit_weights("fc1", 2)
    assert drawn.kind == "incoming" and drawn.titles == ("input",)
    np.testing.assert_array_equal(drawn.images[0], _w(model.fc1)[2].reshape(16, 16))
    assert "input image" in drawn.caption
    # A 16-feature input is drawn as one row.
    assert adapter.unit_weights("fc2", 0).images[0].shape == (1, 16)
    np.testing.assert_array_equal(adapter.output_weights("relu1", 5), _w(model.fc2)[:, 5])


def test_output_weights_only_where_one_linear_layer_makes_the_output(adapter, cnn):
    for site in ("fc1", "relu3"):
        np.testing.assert_array_equal(adapter.output_weights(site, 11), _w(cnn.fc2)[:, 11])
        assert adapter.output_weights(site, 11).dtype == np.float32
    for site in ("conv1", "conv2", "pool2", "flatten", "fc2"):
        assert adapter.output_weights(site, 0) is None, site
    assert adapter.output_weights("fc1", 64) is None


def test_in_place_relu_and_dropout_between_are_seen_through():
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(6, 5)), ("act", nn.ReLU(inplace=True)), ("drop", nn.Dropout()),
        ("fc2", nn.Linear(5, 3))]))
    adapter = TorchAdapter(model, "tiny", (6,))
    np.testing.assert_array_equal(adapter.output_weights("act", 1), _w(model.fc2)[:, 1])
    np.testing.assert_array_equal(adapter.unit_weights("drop", 1).images[0][0],
                                  _w(model.fc1)[1])


def test_a_residual_path_is_not_mistaken_for_direct_weights():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)

        def forward(self, x):
            h = self.act(self.fc1(x))
            return self.fc2(h) + h

    adapter = TorchAdapter(Residual(), "residual", (4,))
    assert adapter.output_weights("act", 0) is None
    assert adapter.output_weights("fc1", 0) is None


@pytest.fixture(scope="module")
def transformer():
    return open_zoo("induction_transformer")


def test_head_circuits_are_token_by_token(transformer):
    for site in ("block1.attn.heads", "block1.attn.pattern", "block1.attn"):
        drawn = transformer.unit_weights(site, 2)
        assert drawn.kind == "circuits"
        assert [im.shape for im in drawn.images] == [(28, 28), (28, 28)]
        assert drawn.row_labels == drawn.col_labels == VOCAB
    assert transformer.unit_weights("block1.attn.heads", 4) is None
    assert transformer.output_weights("block1.attn.heads", 0) is None
    assert transformer.output_weights("block1", 0) is None


def test_head_circuits_are_computed_from_the_weights(transformer):
    model = transformer.model
    d, dh, h = 64, 16, 3
    attn = model.block0.attn
    w_e, w_u = _w(model.embed.tok).astype(np.float64), _w(model.unembed).T
    qkv, out = _w(attn.qkv), _w(attn.out)
    q, k, v = (qkv[i * d + h * dh:i * d + (h + 1) * dh].T for i in range(3))
    o = out[:, h * dh:(h + 1) * dh].T
    qk, ov = transformer.unit_weights("block0.attn.heads", h).images
    np.testing.assert_allclose(qk, (w_e @ q) @ (w_e @ k).T / 4.0, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ov, w_e @ v @ o @ w_u, rtol=1e-4, atol=1e-4)


def test_layer1_induction_heads_copy_and_the_previous_token_head_does_not(transformer):
    # Measured on the shipped weights: each layer-1 head's OV circuit puts its largest
    # value on the diagonal for 20-23 of the 26 letters (it promotes the token it
    # attends to); the previous-token head L0H2 for none.
    letters = len(VOCAB) - 2

    def copies(layer: int, head: int) -> float:
        ov = transformer.unit_weights(f"block{layer}.attn.heads", head).images[1]
        ov = ov[:letters, :letters]
        return float((ov.argmax(axis=1) == np.arange(letters)).mean())

    for head in range(4):
        assert copies(1, head) >= 0.7, head
    assert copies(0, 2) < 0.2


def test_unknown_attention_modules_have_no_circuits():
    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 8)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.unembed = nn.Linear(8, 10)

        def forward(self, tokens):
            x = self.embed(tokens)
            return self.unembed(self.attn(x, x, x)[0])

    adapter = TorchAdapter(Attn(), "mha", (5,), np.int64)
    assert adapter.unit_weights("attn", 0) is None
    assert adapter.output_weights("attn", 0) is None
