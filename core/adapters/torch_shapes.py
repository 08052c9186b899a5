"""Every module's output shape, for the model tree, without the cost of a forward pass.

A real forward pass of SmolLM2 over a dummy batch costs ~0.4 s. The shape pass runs
the same code over zeros but skips what cannot change a shape:

- a block built like one already run (same classes, settings and weight shapes) that
  gets an input of the same shape gives the same shapes, so only the first of
  SmolLM's 30 blocks runs and the others copy its shapes;
- ``nn.Linear`` and ``nn.Embedding`` return zeros of the shape they would produce
  (their matrix products are most of the time: the 49,152-way unembedding alone is a
  third of SmolLM's forward).

(The meta device was tried first: its shape rules are Python, ~0.2 ms an op, and its
first use in a process imports ``torch._dynamo``, 1–3 s.)

A model whose forward the shape pass cannot run falls back to a real forward pass;
the fallback is logged so a slow open can be traced to it.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

#: Two examples, so an output without a batch axis (a position embedding) shows: its
#: first axis is not 2 and the tree skips it.
BATCH = 2


def output_shapes(model: nn.Module, input_shape: tuple[int, ...],
                  dtype: np.dtype) -> dict[str, tuple[int, ...]]:
    """``{module name: output shape without the batch axis}`` for every named module
    whose output is a batched tensor; the shape pass where it runs, else a real one."""
    try:
        return shape_pass(model, input_shape, dtype)
    except Exception as exc:  # noqa: BLE001 — any failure has the real pass to fall back on
        log.info("shape-only pass of %s failed (%s: %s); running a real forward pass",
                 type(model).__name__, type(exc).__name__, exc)
        return real_shapes(model, input_shape, dtype)


def shape_pass(model: nn.Module, input_shape: tuple[int, ...],
               dtype: np.dtype) -> dict[str, tuple[int, ...]]:
    """The shapes from a forward pass that skips repeated blocks and the work of
    linear and embedding layers (see the module's doc)."""
    shapes: dict[str, tuple[int, ...]] = {}
    with _shortcuts(model, shapes):
        return _hooked(model, _zeros(input_shape, dtype), shapes)


def real_shapes(model: nn.Module, input_shape: tuple[int, ...],
                dtype: np.dtype) -> dict[str, tuple[int, ...]]:
    """The shapes from a real forward pass over zeros (the slow path the shape pass
    must agree with)."""
    return _hooked(model, _zeros(input_shape, dtype), {})


def _zeros(input_shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
    return torch.from_numpy(np.zeros((BATCH, *input_shape), dtype=np.dtype(dtype)))


def _hooked(model: nn.Module, x: torch.Tensor, shapes: dict) -> dict[str, tuple[int, ...]]:
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
            model(x)
    finally:
        for h in handles:
            h.remove()
    return shapes


#: Above this many elements, zeros are one zero expanded: filling SmolLM's 25 MB of
#: logits took 20-40 ms, but ops on an expanded input run slower than on a dense one.
_EXPAND = 1 << 20


def _zeros_like_shape(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Zeros of ``shape``; large ones in no memory (a forward that writes into those
    in place fails, and falls back to the real pass)."""
    if np.prod(shape) > _EXPAND:
        return torch.zeros((), dtype=dtype).expand(shape)
    return torch.zeros(shape, dtype=dtype)


def _linear(module: nn.Linear):
    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != module.in_features:  # the error the real layer would raise
            raise RuntimeError(f"Linear expects {module.in_features} features, "
                               f"got {x.shape[-1]}")
        return _zeros_like_shape((*x.shape[:-1], module.out_features),
                                 torch.result_type(x, module.weight))
    return forward


def _embedding(module: nn.Embedding):
    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point():
            raise RuntimeError("Embedding expects integer indices")
        return _zeros_like_shape((*x.shape, module.embedding_dim), module.weight.dtype)
    return forward


_PLAIN = (int, float, str, bool, type(None))


def _signature(module: nn.Module, known: dict) -> tuple:
    """What decides a module's output shapes besides its input: its class, its public
    settings (``in_features``, ``group`` …), its weight shapes and, likewise, its
    children's; ``known`` holds those already made (each module is visited once)."""
    sig = known.get(id(module))
    if sig is None:
        settings = tuple(sorted((k, v) for k, v in vars(module).items()
                                if not k.startswith("_") and isinstance(v, _PLAIN)))
        tensors = tuple((n, tuple(t.shape), t.dtype)
                        for n, t in (*module._parameters.items(), *module._buffers.items())
                        if t is not None)
        children = tuple((n, _signature(c, known)) for n, c in module._modules.items()
                         if c is not None)
        sig = known[id(module)] = (type(module), settings, tensors, children)
    return sig


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


class _shortcuts:
    """While active: linear and embedding layers (exactly those classes, not
    subclasses that may do more) return zeros of their output's shape, and a container
    whose signature and input shapes match one already run returns zeros of the
    recorded output shape while the shapes recorded inside the first one are copied
    under its own name."""

    def __init__(self, model: nn.Module, shapes: dict) -> None:
        self.model, self.shapes = model, shapes
        self.memo: dict = {}
        self.patched: list[tuple[nn.Module, object]] = []

    def __enter__(self):
        known: dict = {}
        for name, module in self.model.named_modules():
            if type(module) is nn.Linear:
                forward = _linear(module)
            elif type(module) is nn.Embedding:
                forward = _embedding(module)
            elif name and next(module.children(), None) is not None:
                forward = self._repeat(name, module, _signature(module, known))
            else:
                continue
            self.patched.append((module, module.__dict__.get("forward")))
            module.forward = forward
        return self

    def __exit__(self, *exc) -> None:
        for module, own in self.patched:
            if own is None:
                del module.forward
            else:
                module.forward = own

    def _repeat(self, name: str, module: nn.Module, signature: tuple):
        run, shapes, memo = module.forward, self.shapes, self.memo
        prefix = name + "."

        def forward(*args, **kwargs):
            inputs = _arg_key(args, kwargs)
            hit = memo.get((signature, inputs)) if inputs is not None else None
            if hit is not None:
                inner, shape, dtype = hit
                shapes.update({prefix + k: v for k, v in inner.items()})
                return _zeros_like_shape(shape, dtype)
            out = run(*args, **kwargs)
            if inputs is not None and isinstance(out, torch.Tensor):
                inner = {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}
                memo[(signature, inputs)] = (inner, tuple(out.shape), out.dtype)
            return out

        return forward
