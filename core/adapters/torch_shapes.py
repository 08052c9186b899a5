"""Every module's output shape, for the model tree, without computing any values.

A real forward pass of SmolLM2 over a dummy batch costs ~0.4 s; the same pass on the
meta device (tensors with a shape and no data) follows the same code and costs
milliseconds. Models whose forward does something the meta device cannot (reads a
value with ``.item()``, mixes in a CPU tensor it made itself) fall back to the real
pass; the fallback is logged so a slow open can be traced to it.

Even on the meta device an elementwise op costs ~0.2 ms (its shape rule is Python), so
30 Llama blocks take ~0.5 s. A block that is built like one already seen (same class,
settings and weight shapes) and gets an input of the same shape gives the same shapes,
so the pass runs the first such block only and copies its shapes to the others.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

log = logging.getLogger(__name__)

#: Two examples, so an output without a batch axis (a position embedding) shows: its
#: first axis is not 2 and the tree skips it.
BATCH = 2


def output_shapes(model: nn.Module, input_shape: tuple[int, ...],
                  dtype: np.dtype) -> dict[str, tuple[int, ...]]:
    """``{module name: output shape without the batch axis}`` for every named module
    whose output is a batched tensor; the meta pass where it works, else a real one."""
    try:
        return meta_shapes(model, input_shape, dtype)
    except Exception as exc:  # noqa: BLE001 — any failure has the real pass to fall back on
        log.info("shape-only pass of %s failed (%s: %s); running a real forward pass",
                 type(model).__name__, type(exc).__name__, exc)
        return real_shapes(model, input_shape, dtype)


def meta_shapes(model: nn.Module, input_shape: tuple[int, ...],
                dtype: np.dtype) -> dict[str, tuple[int, ...]]:
    """The shapes from a forward pass on the meta device: the model's own weights stay
    where they are; meta stand-ins of the same shapes take their place for the pass,
    and tensors the forward creates itself land on the meta device too."""
    with torch.device("meta"):
        stand_ins = {name: torch.empty_like(t, device="meta")
                     for name, t in _tensors(model)}
        x = torch.zeros((BATCH, *input_shape), dtype=_torch_dtype(dtype))
        shapes: dict[str, tuple[int, ...]] = {}
        with _repeats_skipped(model, shapes):
            return _hooked(model, lambda: functional_call(model, stand_ins, (x,),
                                                          tie_weights=False, strict=True),
                           shapes)


def real_shapes(model: nn.Module, input_shape: tuple[int, ...],
                dtype: np.dtype) -> dict[str, tuple[int, ...]]:
    """The shapes from a real forward pass over zeros (the slow path the meta pass
    must agree with)."""
    x = torch.zeros((BATCH, *input_shape), dtype=_torch_dtype(dtype))
    return _hooked(model, lambda: model(x))


def _tensors(model: nn.Module):
    # Tied weights appear under each name, so each name gets its stand-in.
    yield from model.named_parameters(remove_duplicate=False)
    yield from model.named_buffers(remove_duplicate=False)


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype


def _hooked(model: nn.Module, forward, shapes=None) -> dict[str, tuple[int, ...]]:
    shapes = {} if shapes is None else shapes
    handles = []

    def hook(name):
        def record(_module, _inputs, out):
            if isinstance(out, torch.Tensor) and out.dim() > 1 and out.shape[0] == BATCH:
                shapes[name] = tuple(int(s) for s in out.shape[1:])
        return record

    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(hook(name)))
        with torch.inference_mode():
            forward()
    finally:
        for h in handles:
            h.remove()
    return shapes


_PLAIN = (int, float, str, bool, type(None))


def _signature(module: nn.Module) -> tuple:
    """What decides a module's output shapes besides its input: its classes, their
    public settings (``in_features``, ``group`` …) and its weight shapes."""
    parts = []
    for name, m in module.named_modules():
        settings = tuple(sorted((k, v) for k, v in vars(m).items()
                                if not k.startswith("_") and isinstance(v, _PLAIN)))
        parts.append((name, type(m), settings))
    parts += [(n, tuple(t.shape), t.dtype) for n, t in _tensors(module)]
    return tuple(parts)


def _arg_key(args: tuple, kwargs: dict):
    """The inputs as far as shapes go; None when one is not a tensor or a plain value
    (then the module always runs)."""
    key = []
    for value in (*args, *(v for _, v in sorted(kwargs.items()))):
        if isinstance(value, torch.Tensor):
            key.append((tuple(value.shape), value.dtype))
        elif isinstance(value, _PLAIN):
            key.append(value)
        else:
            return None
    return tuple(key), tuple(sorted(kwargs))


class _repeats_skipped:
    """While active, a container module whose signature and input shapes match one
    already run returns an empty meta tensor of the recorded output shape, and the
    shapes recorded inside the first one are copied under its own name."""

    def __init__(self, model: nn.Module, shapes: dict) -> None:
        self.model, self.shapes = model, shapes
        self.memo: dict = {}
        self.patched: list[tuple[nn.Module, object]] = []

    def __enter__(self):
        for name, module in self.model.named_modules():
            if name and next(module.children(), None) is not None:
                self.patched.append((module, module.__dict__.get("forward")))
                module.forward = self._wrap(name, module, _signature(module))
        return self

    def __exit__(self, *exc) -> None:
        for module, own in self.patched:
            if own is None:
                del module.forward
            else:
                module.forward = own

    def _wrap(self, name: str, module: nn.Module, signature: tuple):
        run, shapes, memo = module.forward, self.shapes, self.memo
        prefix = name + "."

        def forward(*args, **kwargs):
            inputs = _arg_key(args, kwargs)
            hit = memo.get((signature, inputs)) if inputs is not None else None
            if hit is not None:
                inner, shape, dtype = hit
                shapes.update({prefix + k: v for k, v in inner.items()})
                return torch.empty(shape, dtype=dtype, device="meta")
            out = run(*args, **kwargs)
            if inputs is not None and isinstance(out, torch.Tensor):
                inner = {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}
                memo[(signature, inputs)] = (inner, tuple(out.shape), out.dtype)
            return out

        return forward
