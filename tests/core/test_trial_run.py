"""A trial run refuses models that hang, eat memory, crash or give no class scores —
in a child process, within its bounds, while the test process stays up (issue 10)."""

import os
import time
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto as T
from onnx import helper as h
from torch import nn

from core.adapters.onnx_adapter import OnnxAdapter
from core.adapters.torch_adapter import TorchAdapter
from core.adapters.trial import trial_run
from core.datasets import load_digits
from core.errors import ModelLoadError
from core.zoo.loading import open_zoo
from tests.hostile import onnx_traps


@pytest.fixture(scope="module")
def two():
    return np.array(load_digits("eval").inputs[:2])


def _linear_head(nodes, inits):
    """x (N, 1, 16, 16) -> y (N, 10): the part of the graph that is a real classifier."""
    rng = np.random.default_rng(0)
    inits.append(h.make_tensor("w", T.FLOAT, [256, 10], rng.normal(size=2560).tolist()))
    nodes += [h.make_node("Flatten", ["x"], ["flat"], name="/flatten/Flatten"),
              h.make_node("MatMul", ["flat", "w"], ["y"], name="/fc/MatMul")]


def _save(path, nodes, inits, out="out"):
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["n", 1, 16, 16])],
                         [h.make_tensor_value_info(out, T.FLOAT, None)], inits)
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), str(path))
    return str(path)


def _endless_loop(path):
    return str(onnx_traps.endless_loop(path))


def _huge_constant(path):
    return str(onnx_traps.huge_constant(path))


def test_an_endless_loop_is_refused_within_the_time_limit(tmp_path, two):
    path = _endless_loop(tmp_path / "loop.onnx")
    start = time.monotonic()
    # Building one here only reads the file, so a caller may learn the input size first.
    assert OnnxAdapter(path, "loop.onnx").input_shape == (1, 16, 16)
    with pytest.raises(ModelLoadError) as caught:
        trial_run(lambda: OnnxAdapter(path, "loop.onnx"), two, time_limit_s=2.0,
                  name="loop.onnx")
    assert time.monotonic() - start < 6.0
    assert str(caught.value) == ("loop.onnx did not finish a trial run on two examples "
                                 "within 2 s; it was not opened and the previous model stays.")


def test_a_64_gib_allocation_is_refused_not_fatal(tmp_path, two):
    path = _huge_constant(tmp_path / "huge.onnx")
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as caught:
        trial_run(lambda: OnnxAdapter(path, "huge.onnx"), two, time_limit_s=20.0,
                  name="huge.onnx")
    assert time.monotonic() - start < 25.0
    assert str(caught.value) == ("huge.onnx needed more than 1.5 GB of memory during a trial "
                                 "run on two examples; it was not opened and the previous "
                                 "model stays.")


def test_memory_touched_gradually_is_caught_by_the_bound(two):
    class Hog(nn.Module):
        def forward(self, x):
            hoard = []
            for _ in range(40):  # 40 x 100 MB, each written so it is resident
                hoard.append(torch.ones(25_000_000))
                time.sleep(0.01)
            return x.flatten(1)[:, :10] + hoard[-1][0]

    with pytest.raises(ModelLoadError, match="needed more than 0.5 GB of memory"):
        trial_run(lambda: TorchAdapter(Hog(), "hog", (1, 16, 16)), two,
                  memory_limit_bytes=2 ** 29, name="hog.pt")


class _Exits(nn.Module):
    def forward(self, x):
        os._exit(3)


def test_a_forward_that_exits_is_reported_as_a_crash(two):
    with pytest.raises(ModelLoadError) as caught:
        trial_run(lambda: TorchAdapter(_Exits(), "exits", (1, 16, 16)), two, name="exits.pt")
    assert str(caught.value) == ("exits.pt crashed during a trial run on two examples (exit "
                                 "code 3); it was not opened and the previous model stays.")


class _Raises(nn.Module):
    def forward(self, x):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x256 and 100x10)")


class _OneScore(nn.Module):
    def forward(self, x):
        return x.flatten(1).sum(1, keepdim=True)


def test_errors_and_wrong_outputs_are_plain_sentences(two):
    with pytest.raises(ModelLoadError) as caught:
        trial_run(lambda: TorchAdapter(_Raises(), "raises", (1, 16, 16)), two, name="r.pt")
    message = str(caught.value)
    assert message.startswith("r.pt could not run on two examples: ")
    # The reason in one line (the type and the first line of its message), no traceback.
    assert "its forward pass failed (RuntimeError: mat1 and mat2 shapes cannot be " \
        "multiplied" in message
    assert "Traceback" not in message and "log file" not in message
    with pytest.raises(ModelLoadError, match="1 score per example; at least 2 classes"):
        trial_run(lambda: TorchAdapter(_OneScore(), "one", (1, 16, 16)), two, name="one.pt")


def test_good_models_pass(tmp_path, two):
    trial_run(lambda: open_zoo("digits_cnn"), two, name="digits_cnn")
    model = open_zoo("digits_cnn").model
    path = tmp_path / "digits.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 16, 16),), str(path), dynamo=False)
    trial_run(lambda: OnnxAdapter(str(path), "digits.onnx"), two, name="digits.onnx")
