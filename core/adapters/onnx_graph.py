"""Graph surgery and compiling for the ONNX adapter.

Which node outputs are capture sites (float tensors computed from the input, one per
example), and the rewritten graph one run needs: extra outputs for captures, ``x * keep
+ fill`` after each ablated tensor, and casts so that every array crossing into the app
is float32 whatever the model computes in (float16, float64, bfloat16).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from core.errors import ModelLoadError

log = logging.getLogger(__name__)

FLOAT_TYPES = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16",
               TensorProto.DOUBLE: "float64", TensorProto.BFLOAT16: "bfloat16"}
#: onnxruntime's names of tensor types, as ``get_outputs()`` reports them.
_ORT_TYPES = {"tensor(float)": TensorProto.FLOAT, "tensor(float16)": TensorProto.FLOAT16,
              "tensor(double)": TensorProto.DOUBLE, "tensor(bfloat16)": TensorProto.BFLOAT16}


@dataclass(frozen=True)
class Tensor:
    """A capture site's tensor: its name in the graph and its element type."""

    name: str
    elem: int


@dataclass(frozen=True)
class Plan:
    """What one compiled graph computes beyond the model's output.

    ``capture``: tensors returned as they are after any ablation; ``ablated``: tensors
    rewritten to ``x * keep + fill``, each returned before and after (the self-check).
    """

    capture: tuple[Tensor, ...] = ()
    ablated: tuple[Tensor, ...] = ()


def site_name(node: onnx.NodeProto) -> str:
    """``/conv1/Conv`` -> ``conv1``; ``/blocks.0/attn/MatMul`` -> ``blocks.0.attn``;
    ``/Relu_1`` -> ``Relu_1``."""
    parts = [p for p in node.name.split("/") if p]
    if len(parts) >= 2:
        return ".".join(parts[:-1])
    return parts[0] if parts else node.output[0]


def _referenced(node: onnx.NodeProto) -> set[str]:
    """Tensor names a node reads, including those its subgraphs (Loop, If, Scan bodies)
    take from the enclosing graph without listing them as inputs."""
    names = set(node.input)
    for attr in node.attribute:
        graphs = list(attr.graphs) + ([attr.g] if attr.HasField("g") else [])
        for graph in graphs:
            for inner in graph.node:
                names |= _referenced(inner)
    return names


def input_dependent(graph: onnx.GraphProto, source: str) -> list[onnx.NodeProto]:
    """Nodes whose first output depends on ``source`` (graph nodes are in topological
    order, as the ONNX standard requires)."""
    reached, nodes = {source}, []
    for node in graph.node:
        if _referenced(node) & reached:
            reached.update(o for o in node.output if o)
            nodes.append(node)
    return nodes


def output_types(model: onnx.ModelProto, names: Iterable[str], label: str) -> dict[str, int]:
    """Element type of each tensor in ``names``, as onnxruntime infers it when they are
    made outputs of the graph (no run needed); only float types are returned."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output}
    for name in dict.fromkeys(names):
        if name not in present:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    session = compile_model(probe, label)
    return {o.name: _ORT_TYPES[o.type] for o in session.get_outputs() if o.type in _ORT_TYPES}


def _as_float32(graph: onnx.GraphProto, tensor: Tensor) -> str:
    """Name of a float32 copy of ``tensor`` (a Cast node when it is another type)."""
    if tensor.elem == TensorProto.FLOAT:
        return tensor.name
    name = f"{tensor.name}__f32"
    if not any(name in n.output for n in graph.node):
        graph.node.append(helper.make_node("Cast", [tensor.name], [name],
                                           to=TensorProto.FLOAT))
    return name


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
    for output in graph.output:
        if output.name == old:
            output.name = new


def rewrite(model: onnx.ModelProto, source: str, source_elem: int, output: Tensor,
            plan: Plan) -> tuple[onnx.ModelProto, list[str]]:
    """The graph for ``plan``, and the names of its outputs, in this order: the model's
    output, each captured tensor, then each ablated tensor before and after.

    ``keep__<tensor>`` and ``fill__<tensor>`` become float32 graph inputs without a
    static shape, so one compiled graph serves every toggle of the same tensors.
    """
    new = onnx.ModelProto()
    new.CopyFrom(model)
    graph = new.graph
    if source_elem == TensorProto.BFLOAT16:
        # numpy has no bfloat16: feed float32 and let the graph round it.
        outer = feed_name(source, source_elem)
        for value in graph.input:
            if value.name == source:
                value.name = outer
                value.type.tensor_type.elem_type = TensorProto.FLOAT
        graph.node.insert(0, helper.make_node("Cast", [outer], [source],
                                              to=TensorProto.BFLOAT16))
    final, renamed = output, {}
    for tensor in plan.ablated:
        masked = Tensor(f"{tensor.name}__ablated", tensor.elem)
        renamed[tensor.name] = masked
        _rename_uses(graph, tensor.name, masked.name)
        keep, fill = f"keep__{tensor.name}", f"fill__{tensor.name}"
        graph.input.extend([helper.make_tensor_value_info(keep, TensorProto.FLOAT, None),
                            helper.make_tensor_value_info(fill, TensorProto.FLOAT, None)])
        if tensor.elem != TensorProto.FLOAT:
            graph.node.extend([helper.make_node("Cast", [keep], [f"{keep}__t"], to=tensor.elem),
                               helper.make_node("Cast", [fill], [f"{fill}__t"], to=tensor.elem)])
            keep, fill = f"{keep}__t", f"{fill}__t"
        graph.node.extend([
            helper.make_node("Mul", [tensor.name, keep], [f"{tensor.name}__kept"]),
            helper.make_node("Add", [f"{tensor.name}__kept", fill], [masked.name])])
        if tensor.name == output.name:
            final = masked
    wanted = [final] + [renamed.get(t.name, t) for t in plan.capture]
    for tensor in plan.ablated:
        wanted += [tensor, renamed[tensor.name]]
    names = [_as_float32(graph, t) for t in wanted]
    del graph.output[:]
    for name in dict.fromkeys(names):
        graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return new, names


def feed_name(source: str, source_elem: int) -> str:
    """The graph input that :func:`rewrite` feeds the model's input through."""
    return f"{source}__f32" if source_elem == TensorProto.BFLOAT16 else source


def compile_model(model: onnx.ModelProto, label: str) -> ort.InferenceSession:
    """An onnxruntime session on the CPU; :class:`ModelLoadError` in plain words when
    the runtime cannot run the graph (the runtime's own text goes to the log)."""
    # (No onnx.checker here: the added inputs/outputs carry no static shape, which the
    # checker insists on; onnxruntime validates the graph when compiling it.)
    options = ort.SessionOptions()
    options.log_severity_level = 4  # its errors reach our log, in context
    try:
        return ort.InferenceSession(model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # the runtime raises its own untyped errors
        log.warning("onnxruntime could not compile %s: %s", label, exc)
        raise ModelLoadError(f"{label} {_plain_reason(str(exc), model)}; it was not "
                             "opened.") from exc


def _plain_reason(text: str, model: onnx.ModelProto) -> str:
    missing = re.search(r"implementation for (\w+)\(", text)
    types = {t for t in (_elem_types(model)) if t in FLOAT_TYPES}
    if missing:
        number = ("bfloat16 " if TensorProto.BFLOAT16 in types
                  else "float16 " if TensorProto.FLOAT16 in types else "")
        return (f"uses a {missing.group(1)} layer on {number}numbers, which the ONNX "
                "runtime on this computer cannot compute; export it in float32")
    if "opset" in text.lower():
        return "needs a newer ONNX runtime than this one (its opset is too recent)"
    return "could not be prepared by the ONNX runtime (the log file has the details)"


def _elem_types(model: onnx.ModelProto) -> set[int]:
    graph = model.graph
    values = list(graph.input) + list(graph.output) + list(graph.value_info)
    return ({v.type.tensor_type.elem_type for v in values}
            | {i.data_type for i in graph.initializer})


def numpy_dtype(elem: int) -> Optional[np.dtype]:
    """What numpy feeds a graph input of type ``elem``; ``None`` for bfloat16 (cast in
    the graph, see :func:`rewrite`) and for types that numpy lacks."""
    if elem == TensorProto.BFLOAT16:
        return None
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem))
    except (KeyError, TypeError):
        return None
