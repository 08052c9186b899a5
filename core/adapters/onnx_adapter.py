"""The ONNX implementation of :class:`core.model.ModelAdapter`, through onnxruntime.

A model exported from Keras, JAX or PyTorch reaches Mechscope as ONNX. Every node whose
first output is a float tensor computed from the input, one per example, is a capture
site named after the node (``/conv1/Conv`` -> ``conv1``). Capturing adds the tensors as
extra graph outputs; ablating inserts ``x * keep + fill`` right after the ablated tensor
(see :mod:`core.adapters.onnx_graph`), with ``keep``/``fill`` fed as graph inputs so one
compiled session serves every toggle of the same sites. Sessions are cached per plan.

Exports as they come: a batch size fixed at export runs in chunks of that size; inputs
are converted to the type the graph reads (float16, float64, integers) and every array
handed back is float32.
"""

from __future__ import annotations

import logging
from typing import Mapping, Optional, Sequence

import numpy as np
import onnx

from core.ablation import Ablation, unit_mask
from core.adapters import onnx_graph as og
from core.errors import AblationError, InputError, ModelLoadError
from core.jobs import CancelToken, check
from core.model import HookReport, LayerInfo, RunResult

log = logging.getLogger(__name__)
MAX_SESSIONS = 16


def _dims(value_info) -> tuple:
    return tuple(d.dim_value if d.dim_value > 0 else None
                 for d in value_info.type.tensor_type.shape.dim)


class OnnxAdapter:
    """Wraps an ONNX model file (already checked by the probe process).

    Constructing reads the file only; the graph is first compiled and run (on zeros, to
    learn every layer's shape) by :meth:`layers` or :meth:`run`, so an adapter can be
    built to learn ``input_shape`` before :func:`core.adapters.trial.trial_run` has
    shown that running it is safe.

    Raises
    ------
    ModelLoadError
        Not one input and one output, or an input of unknown size; from :meth:`layers`
        and :meth:`run` also: no float layer, or a graph the runtime cannot compute.
    """

    def __init__(self, path: str, name: str) -> None:
        self.name = name
        try:
            self.model = onnx.load(path)
        except Exception as exc:  # protobuf's errors are not for users
            log.warning("onnx could not load %s: %s", path, exc)
            raise ModelLoadError(f"{name} could not be read as an ONNX model; it may be "
                                 "damaged or not an ONNX file.") from exc
        graph = self.model.graph
        initializers = {i.name for i in graph.initializer}
        inputs = [i for i in graph.input if i.name not in initializers]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ModelLoadError(f"{name} has {len(inputs)} inputs and {len(graph.output)} "
                                 "outputs; Mechscope opens ONNX models with one input and "
                                 "one output.")
        dims = _dims(inputs[0])
        if len(dims) < 2 or None in dims[1:]:
            raise ModelLoadError(f"{name} does not fix the size of one example of its input; "
                                 "export it with a fixed example size (only the batch "
                                 "may vary).")
        self._input = inputs[0].name
        self._input_elem = inputs[0].type.tensor_type.elem_type
        self.input_shape = tuple(dims[1:])
        #: The batch size fixed at export (torch.onnx.export's default), or None.
        self.batch: Optional[int] = dims[0]
        self.input_dtype = og.numpy_dtype(self._input_elem) or np.dtype(np.float32)
        self._sessions: dict = {}
        self._layers: tuple[LayerInfo, ...] = ()

    # --- layers -------------------------------------------------------------------------
    def layers(self) -> tuple[LayerInfo, ...]:
        if not self._layers:
            self._sites, layers = self._describe()
            self._infos = {i.name: i for i in layers}
            self._order = {i.name: k for k, i in enumerate(layers)}
            self._layers = layers
        return self._layers

    def _describe(self) -> tuple[dict, tuple[LayerInfo, ...]]:
        graph = self.model.graph
        initializers = {i.name for i in graph.initializer}
        out_name = graph.output[0].name
        nodes = [n for n in og.input_dependent(graph, self._input)
                 if n.op_type != "Constant" and n.output and n.output[0]]
        types = og.output_types(self.model, [out_name] + [n.output[0] for n in nodes],
                                self.name)
        self._output = og.Tensor(out_name, types.get(
            out_name, graph.output[0].type.tensor_type.elem_type or onnx.TensorProto.FLOAT))
        # Shapes, indices and masks (int64, bool) are plumbing, not layers.
        floats = [(n, og.Tensor(n.output[0], types[n.output[0]])) for n in nodes
                  if n.output[0] in types]
        # The real shapes, from one run on zeros: shape inference cannot follow a reshape
        # computed from the input's own shape (``x.view(x.size(0), -1)``).
        rows = self.batch or 2
        zeros = np.zeros((rows, *self.input_shape), np.float32)
        try:
            outs = self._execute(og.Plan(tuple(t for _, t in floats)), zeros, {})[1:]
        except InputError as exc:
            raise ModelLoadError(f"{self.name} could not compute its output for an input of "
                                 "zeros; the log file has the runtime's details.") from exc
        self._sessions.clear()  # that graph returns every tensor: not worth keeping
        sizes = {i.name: int(np.prod(i.dims)) for i in graph.initializer}
        sites, infos = {}, {}
        for (node, tensor), value in zip(floats, outs):
            if value.ndim < 2 or value.shape[0] != rows:
                continue  # not one value per example: no units to show
            name = og.site_name(node)
            infos.pop(name, None)  # several nodes under one module: keep the last
            sites[name] = tensor
            shape = tuple(value.shape[1:])
            n_params = sum(sizes.get(i, 0) for i in node.input if i in initializers)
            infos[name] = LayerInfo(name, node.op_type, shape, 1 if len(shape) == 2 else 0,
                                    n_params)
        if not infos:
            raise ModelLoadError(f"{self.name} has no layer with a float output per "
                                 "example, so there is nothing to show.")
        return sites, tuple(infos.values())

    # --- running graphs -----------------------------------------------------------------
    def _session(self, plan: og.Plan):
        if plan not in self._sessions:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            model, names = og.rewrite(self.model, self._input, self._input_elem,
                                      self._output, plan)
            self._sessions[plan] = (og.compile_model(model, self.name), names)
        return self._sessions[plan]

    def _prepare(self, inputs: np.ndarray) -> np.ndarray:
        """``inputs`` (N, *input_shape) in the type the graph reads."""
        x = np.asarray(inputs)
        if x.shape[1:] != self.input_shape:
            raise InputError(f"{self.name} expects inputs of shape {self.input_shape}; got "
                             f"{x.shape[1:]}.")
        if np.issubdtype(self.input_dtype, np.integer) and not np.issubdtype(x.dtype,
                                                                            np.integer):
            x = np.rint(x)  # a float image fed to an integer input: nearest, not floor
        return np.ascontiguousarray(x, self.input_dtype)

    def _execute(self, plan: og.Plan, x: np.ndarray, feeds: dict,
                 token: Optional[CancelToken] = None) -> list[np.ndarray]:
        """The arrays of :func:`onnx_graph.rewrite`'s output names, float32, one row per
        row of ``x`` — in chunks of the fixed batch size when the export has one."""
        session, names = self._session(plan)
        x = self._prepare(x)
        step = self.batch or max(len(x), 1)
        feed = og.feed_name(self._input, self._input_elem)
        parts: list[list[np.ndarray]] = []
        for lo in range(0, max(len(x), 1), step):
            check(token)
            chunk = x[lo:lo + step]
            n = len(chunk)
            if n < step:  # the last chunk of a fixed-batch export: pad, then drop the rows
                chunk = np.concatenate([chunk, np.zeros((step - n, *x.shape[1:]), x.dtype)])
            try:
                outs = session.run(None, {feed: chunk, **feeds})
            except Exception as exc:  # the runtime raises its own untyped errors
                log.warning("onnxruntime failed running %s: %s", self.name, exc)
                raise InputError(f"{self.name} could not compute its output for these "
                                 "inputs; the log file has the runtime's details.") from exc
            parts.append([o[:n] if self.batch else o for o in outs])
        unique = list(dict.fromkeys(names))
        joined = {name: np.concatenate([p[i] for p in parts]) if len(parts) > 1
                  else parts[0][i] for i, name in enumerate(unique)}
        return [joined[name] for name in names]

    def _feeds(self, ablations: Sequence[Ablation], means: Mapping,
               ablated: Sequence[str]) -> dict:
        feeds = {}
        for site in ablated:
            info = self._infos[site]
            here = [a for a in ablations if a.site == site]
            keep, fill = unit_mask(here, site, info.output_shape, info.unit_axis, means)
            tensor = self._sites[site].name
            feeds[f"keep__{tensor}"] = keep[None]
            feeds[f"fill__{tensor}"] = fill[None]
        return feeds

    # --- the adapter protocol -----------------------------------------------------------
    def run(self, inputs: np.ndarray, capture: Sequence[str] = (),
            ablations: Sequence[Ablation] = (), means: Optional[Mapping] = None,
            stop_after: Optional[str] = None,
            token: Optional[CancelToken] = None) -> RunResult:
        check(token)
        self.layers()
        unknown = [s for s in list(capture) + [a.site for a in ablations]
                   if s not in self._sites]
        if unknown:
            raise AblationError(f"The model has no layer named {', '.join(unknown)}.")
        for abl in ablations:
            if abl.whole_layer:
                raise AblationError(f"{abl.label()}: skipping or scaling a layer works for "
                                    "PyTorch models only; switch its units off instead.")
        capture = tuple(dict.fromkeys(capture))
        ablated = tuple(sorted({a.site for a in ablations}, key=self._order.__getitem__))
        plan = og.Plan(tuple(self._sites[s] for s in capture),
                       tuple(self._sites[s] for s in ablated))
        feeds = self._feeds(ablations, means or {}, ablated)
        outs = self._execute(plan, inputs, feeds, token)
        acts = dict(zip(capture, outs[1:1 + len(capture)]))
        pairs = outs[1 + len(capture):]
        n = len(inputs)
        fired = {s: acts[s].shape == (n, *self._infos[s].output_shape) for s in capture}
        changed: dict[str, bool] = {}
        for i, site in enumerate(ablated):
            before, after = pairs[2 * i], pairs[2 * i + 1]
            # The ablated tensor came back, before and after the mask: the node ran.
            fired[site] = before.shape == after.shape == (n, *self._infos[site].output_shape)
            axis = self._infos[site].unit_axis + 1
            for abl in (a for a in ablations if a.site == site):
                units = list(abl.units)
                differs = not np.array_equal(np.take(after, units, axis),
                                             np.take(before, units, axis))
                changed[abl.label()] = changed.get(abl.label(), False) or differs
        never = sorted(s for s, ok in fired.items() if not ok)
        if never:
            log.error("ablated or captured tensors %s did not come back per example", never)
            raise RuntimeError(f"Sites {never} gave no output per example.")
        unchanged = tuple(label for label, c in changed.items() if not c)
        return RunResult(outs[0], acts, HookReport(fired, unchanged))

    def resume_point(self, site: str, inclusive: bool = True) -> Optional[str]:
        return None  # every run starts at the input (onnxruntime runs whole graphs)

    def run_from(self, site, activation, ablations=(), means=None) -> RunResult:
        raise NotImplementedError("ONNX models always run from the input.")

    def run_sweep(self, site: str, units: Sequence[int], mode: str,
                  means: Optional[Mapping], inputs: np.ndarray,
                  resume: Optional[str] = None) -> np.ndarray:
        """One run per unit, all through the same compiled graph (see the protocol)."""
        if resume is not None:
            raise ValueError("ONNX models always run from the input.")
        return np.stack([self.run(inputs, ablations=(Ablation(site, (u,), mode),),
                                  means=means).outputs for u in units])
