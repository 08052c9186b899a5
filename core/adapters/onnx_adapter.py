"""The ONNX implementation of :class:`core.model.ModelAdapter`, through onnxruntime.

A model exported from Keras, JAX or PyTorch reaches Mechscope as ONNX. Every node's
first output is a capture site, named after the node (``/conv1/Conv`` -> ``conv1``).
Capturing adds the tensors as extra graph outputs; ablating inserts ``x * keep + fill``
right after the ablated tensor, with ``keep``/``fill`` fed as graph inputs so one
compiled session serves every toggle of the same sites. Sessions are cached per
(captured sites, ablated sites).
"""

from __future__ import annotations

import logging
from typing import Mapping, Optional, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, shape_inference

from core.ablation import Ablation
from core.errors import AblationError
from core.jobs import CancelToken, check
from core.model import HookReport, LayerInfo, RunResult

log = logging.getLogger(__name__)
MAX_SESSIONS = 16


def _site_name(node: onnx.NodeProto) -> str:
    """``/conv1/Conv`` -> ``conv1``; ``/blocks.0/attn/MatMul`` -> ``blocks.0.attn``."""
    parts = [p for p in node.name.split("/") if p]
    if len(parts) >= 2:
        return ".".join(parts[:-1])
    return node.name or node.output[0]


def _dims(value_info) -> tuple:
    return tuple(d.dim_value if d.dim_value > 0 else None
                 for d in value_info.type.tensor_type.shape.dim)


class OnnxAdapter:
    """Wraps an ONNX model file (already checked by the probe process)."""

    def __init__(self, path: str, name: str) -> None:
        self.name = name
        self.model = onnx.load(path)
        graph = self.model.graph
        initializers = {i.name for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializers]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ValueError("Mechscope opens ONNX models with one input and one output.")
        self._input = inputs[0].name
        self._output = graph.output[0].name
        self.input_shape = tuple(_dims(inputs[0])[1:])
        self.input_dtype = np.float32
        self._sites, self._layers = self._describe(initializers)
        self._sessions: dict = {}

    def _describe(self, initializers: set) -> tuple[dict, tuple[LayerInfo, ...]]:
        inferred = shape_inference.infer_shapes(self.model)
        shapes = {v.name: _dims(v) for v in list(inferred.graph.value_info)
                  + list(inferred.graph.output)}
        sizes = {i.name: int(np.prod(i.dims)) for i in self.model.graph.initializer}
        sites, infos, seen = {}, [], {}
        for node in self.model.graph.node:
            tensor = node.output[0]
            shape = shapes.get(tensor)
            if node.op_type == "Constant" or not shape or None in shape[1:]:
                continue
            name = _site_name(node)
            if name in seen:  # two nodes under one module: keep the last (its output)
                infos = [i for i in infos if i.name != name]
            seen[name] = True
            sites[name] = tensor
            out = shape[1:]
            n_params = sum(sizes.get(i, 0) for i in node.input if i in initializers)
            infos.append(LayerInfo(name, node.op_type, out, 1 if len(out) == 2 else 0,
                                   n_params))
        return sites, tuple(infos)

    def layers(self) -> tuple[LayerInfo, ...]:
        return self._layers

    # --- graph surgery ----------------------------------------------------------------
    def _session(self, capture: tuple, ablated: tuple) -> ort.InferenceSession:
        key = (capture, ablated)
        if key not in self._sessions:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[key] = self._build(capture, ablated)
        return self._sessions[key]

    def _build(self, capture: tuple, ablated: tuple) -> ort.InferenceSession:
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        graph = model.graph
        for site in ablated:
            tensor = self._sites[site]
            masked = f"{tensor}__ablated"
            for node in graph.node:  # consumers now read the ablated tensor
                for i, name in enumerate(node.input):
                    if name == tensor:
                        node.input[i] = masked
            for output in graph.output:
                if output.name == tensor:
                    output.name = masked
            keep, fill = f"keep__{site}", f"fill__{site}"
            graph.input.extend([helper.make_tensor_value_info(keep, onnx.TensorProto.FLOAT,
                                                              None),
                                helper.make_tensor_value_info(fill, onnx.TensorProto.FLOAT,
                                                              None)])
            graph.node.extend([
                helper.make_node("Mul", [tensor, keep], [f"{tensor}__kept"]),
                helper.make_node("Add", [f"{tensor}__kept", fill], [masked])])
        for site in capture:
            tensor = self._sites[site]
            name = f"{tensor}__ablated" if site in ablated else tensor
            graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                              None))
        # (No onnx.checker here: the added inputs/outputs carry no static shape, which
        # the checker insists on; onnxruntime validates the graph when compiling it.)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"])

    def _feeds(self, ablations: Sequence[Ablation], means: Mapping) -> dict:
        feeds = {}
        infos = {i.name: i for i in self._layers}
        for site in sorted({a.site for a in ablations}):
            info = infos[site]
            axis = info.unit_axis
            keep_vec = np.ones(info.n_units, np.float32)
            fill = np.zeros((1, *info.output_shape), np.float32)
            for abl in (a for a in ablations if a.site == site):
                if abl.whole_layer:
                    raise AblationError(f"{abl.label()}: whole-layer changes are not "
                                        "available for ONNX models yet.")
                if max(abl.units) >= info.n_units:
                    raise AblationError(f"{site} has {info.n_units} units.")
                keep_vec[list(abl.units)] = 0
                if abl.mode == "mean":
                    mean = np.asarray(means[site], np.float32)[None]
                    index = [slice(None)] * fill.ndim
                    index[axis + 1] = list(abl.units)
                    fill[tuple(index)] = mean[tuple(index)]
            shape = [1] * (len(info.output_shape) + 1)
            shape[axis + 1] = info.n_units
            feeds[f"keep__{site}"] = keep_vec.reshape(shape)
            feeds[f"fill__{site}"] = fill
        return feeds

    # --- the adapter protocol -----------------------------------------------------------
    def run(self, inputs: np.ndarray, capture: Sequence[str] = (),
            ablations: Sequence[Ablation] = (), means: Optional[Mapping] = None,
            stop_after: Optional[str] = None,
            token: Optional[CancelToken] = None) -> RunResult:
        check(token)
        unknown = [s for s in list(capture) + [a.site for a in ablations]
                   if s not in self._sites]
        if unknown:
            raise AblationError(f"The model has no layer named {', '.join(unknown)}.")
        capture = tuple(dict.fromkeys(capture))
        ablated = tuple(sorted({a.site for a in ablations}))
        session = self._session(capture, ablated)
        feeds = {self._input: np.ascontiguousarray(inputs, np.float32),
                 **self._feeds(ablations, means or {})}
        outs = session.run(None, feeds)
        acts = dict(zip(capture, outs[1:]))
        fired = {s: True for s in set(capture) | set(ablated)}
        return RunResult(outs[0], acts, HookReport(fired, ()))

    def resume_point(self, site: str, inclusive: bool = True) -> Optional[str]:
        return None  # every run starts at the input (onnxruntime runs whole graphs)

    def run_from(self, site, activation, ablations=(), means=None) -> RunResult:
        raise NotImplementedError("ONNX models always run from the input.")

    def run_sweep(self, site: str, units: Sequence[int], mode: str,
                  means: Optional[Mapping], inputs: np.ndarray,
                  resume: Optional[str] = None) -> np.ndarray:
        return np.stack([self.run(inputs, ablations=(Ablation(site, (u,), mode),),
                                  means=means).outputs for u in units])
