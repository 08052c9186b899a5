"""ONNX models that pass every check and compile, and then hang or exhaust memory when
run: what only a trial run can catch (issue #10)."""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h


def _classifier(nodes: list, inits: list) -> None:
    """x (N, 1, 16, 16) -> y (N, 10): the part of the graph that looks like a model."""
    rng = np.random.default_rng(0)
    inits.append(h.make_tensor("w", T.FLOAT, [256, 10], rng.normal(size=2560).tolist()))
    nodes += [h.make_node("Flatten", ["x"], ["flat"], name="/flatten/Flatten"),
              h.make_node("MatMul", ["flat", "w"], ["y"], name="/fc/MatMul")]


def _save(path: Path, nodes: list, inits: list) -> Path:
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["n", 1, 16, 16])],
                         [h.make_tensor_value_info("out", T.FLOAT, ["n", 10])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def endless_loop(path: Path) -> Path:
    """A ``Loop`` of 2**62 iterations around the output."""
    nodes, inits = [], []
    _classifier(nodes, inits)
    inits += [h.make_tensor("trips", T.INT64, [], [2 ** 62]),
              h.make_tensor("go", T.BOOL, [], [True])]
    body = h.make_graph(
        [h.make_node("Identity", ["cond_in"], ["cond_out"]),
         h.make_node("Identity", ["v_in"], ["v_out"])], "body",
        [h.make_tensor_value_info("i", T.INT64, []),
         h.make_tensor_value_info("cond_in", T.BOOL, []),
         h.make_tensor_value_info("v_in", T.FLOAT, ["n", 10])],
        [h.make_tensor_value_info("cond_out", T.BOOL, []),
         h.make_tensor_value_info("v_out", T.FLOAT, ["n", 10])])
    nodes.append(h.make_node("Loop", ["trips", "go", "y"], ["out"], body=body, name="/loop/Loop"))
    return _save(path, nodes, inits)


def huge_constant(path: Path) -> Path:
    """A ``ConstantOfShape`` of 2**34 floats (64 GiB) summed into the output."""
    nodes, inits = [], []
    _classifier(nodes, inits)
    inits.append(h.make_tensor("shape", T.INT64, [1], [2 ** 34]))
    nodes += [h.make_node("ConstantOfShape", ["shape"], ["big"], name="/big/ConstantOfShape"),
              h.make_node("ReduceSum", ["big"], ["total"], keepdims=0, name="/big/ReduceSum"),
              h.make_node("Add", ["y", "total"], ["out"], name="/out/Add")]
    return _save(path, nodes, inits)
