"""A nested site's block as a :mod:`torch.fx` graph, for the exact sweep
(:mod:`core.adapters.torch_sweep`): :func:`trace_block` checks that everything between
the site and the block's output is linear in the site's value, and :func:`propagate`
carries one unit's change through those steps to the block's output."""

from __future__ import annotations

import logging
import operator
from contextlib import contextmanager
from dataclasses import dataclass
from math import prod
from typing import Any, Callable, Iterator, Optional

import torch
from torch import fx, nn

from core.adapters.sweep_lazy import Boxed, Lazy, lazy_linear_change, now
from core.adapters.sweep_ops import is_linear_module

log = logging.getLogger(__name__)


@dataclass
class Block:
    """The traced graph of the top-level child holding a nested site, and what of it
    the change of the site's output runs through (all linear)."""

    graph: fx.Graph
    root: nn.Module
    site_node: fx.Node
    dependent: set
    meta: set
    needed: list  # independent nodes whose values the linear steps use, graph order


# --- tracing --------------------------------------------------------------------------

#: Factory functions that fx cannot trace when given traced sizes (``torch.ones(t, t)``).
_FACTORIES = ("ones", "zeros", "full", "empty", "arange", "eye", "ones_like",
              "zeros_like", "full_like", "rand", "randn", "tensor")


def _has_proxy(args, kwargs) -> Optional[fx.Proxy]:
    found = []
    fx.node.map_aggregate((args, kwargs),
                          lambda a: found.append(a) if isinstance(a, fx.Proxy) else a)
    return found[0] if found else None


@contextmanager
def _traceable_factories() -> Iterator[None]:
    """Let fx record ``torch.ones(t, t)`` and the like when ``t`` is traced: each
    factory is wrapped only while tracing; a call without traced arguments goes
    straight to the original."""
    saved = {}

    def wrap(orig):
        def wrapper(*args, **kwargs):
            proxy = _has_proxy(args, kwargs)
            if proxy is None:
                return orig(*args, **kwargs)
            return proxy.tracer.create_proxy("call_function", orig, args, kwargs)
        return wrapper

    try:
        for name in _FACTORIES:
            saved[name] = getattr(torch, name)
            setattr(torch, name, wrap(saved[name]))
        yield
    finally:
        for name, orig in saved.items():
            setattr(torch, name, orig)


class _Tracer(fx.Tracer):
    """Keeps the site's module a leaf: its call is the node the change starts at."""

    def __init__(self, site_module: nn.Module) -> None:
        super().__init__()
        self.site_module = site_module

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return m is self.site_module or super().is_leaf_module(m, qualname)


_ADD = {operator.add, torch.add, "add"}
_SUB = {operator.sub, torch.sub, "sub"}
_NEG = {operator.neg, torch.neg, "neg"}
_MUL = {operator.mul, torch.mul, "mul"}
_DIV = {operator.truediv, torch.div, "div"}
#: Shape-only operations: linear; the change goes through them as the value does.
_SHAPE_FNS = {operator.getitem, torch.flatten, torch.transpose, torch.permute,
              torch.reshape, torch.squeeze, torch.unsqueeze, torch.movedim, torch.t,
              torch.narrow, torch.select}
_SHAPE_METHODS = {"transpose", "permute", "reshape", "view", "flatten", "contiguous",
                  "unsqueeze", "squeeze", "unflatten", "movedim", "t", "narrow",
                  "select", "expand", "view_as", "reshape_as", "expand_as", "clone"}
_META_METHODS = {"size", "dim"}
_META_ATTRS = {"shape", "ndim", "dtype", "device"}


_IN_PLACE_OPERATORS = {getattr(operator, n) for n in (
    "iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "iand", "ior",
    "ixor", "ilshift", "irshift", "imatmul")}


def _in_place(node: fx.Node, root: nn.Module) -> bool:
    """A node that writes into a tensor: the traced graph would not show it."""
    if node.kwargs.get("out") is not None:
        return True
    if node.op == "call_method":
        name = str(node.target)
        return name.endswith("_") and not name.startswith("_")
    if node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        return node.target in _IN_PLACE_OPERATORS or \
            (name.endswith("_") and not name.startswith("_"))
    if node.op == "call_module":
        return bool(getattr(root.get_submodule(node.target), "inplace", False))
    return False


def trace_block(block: nn.Module, site: str) -> Optional[Block]:
    """``block``'s graph, if its output is linear in the output of submodule ``site``
    (and nothing writes in place); ``None`` otherwise, or if it cannot be traced."""
    try:
        site_module = block.get_submodule(site)
        with _traceable_factories():
            graph = _Tracer(site_module).trace(block)
    except Exception as exc:  # untraceable code: the replicated sweep handles it
        log.info("no traced sweep for %s: %s", site, exc)
        return None
    nodes = list(graph.nodes)
    calls = [n for n in nodes if n.op == "call_module" and n.target == site]
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(calls) != 1 or len(placeholders) != 1 or any(_in_place(n, block) for n in nodes):
        return None
    site_node = calls[0]
    dependent, meta = {site_node}, set()
    for node in nodes[nodes.index(site_node) + 1:]:
        inputs = node.all_input_nodes
        if not any(a in dependent for a in inputs):
            continue
        if node.op == "output":
            if not (len(node.args) == 1 and node.args[0] in dependent):
                return None
            continue
        if _meta(node, dependent):
            meta.add(node)
        elif _linear_rule(node, dependent, block):
            dependent.add(node)
        else:
            return None
    if not any(n.op == "output" and n.args[0] in dependent for n in nodes):
        return None
    # The independent values the linear steps read (sizes, multipliers), with what
    # they are computed from.
    needed: set = set()
    stack = [a for n in dependent | meta if n is not site_node
             for a in n.all_input_nodes if a not in dependent and a not in meta]
    while stack:
        node = stack.pop()
        if node in needed or node in dependent:
            continue
        needed.add(node)
        stack.extend(a for a in node.all_input_nodes if a not in meta)
    order = [n for n in nodes if n in needed]
    return Block(graph, block, site_node, dependent, meta, order)


def _meta(node: fx.Node, dependent: set) -> bool:
    """A node that reads only the shape (dtype, device) of a changing value."""
    first = node.args[0] if node.args else None
    if first not in dependent or any(a in dependent for a in node.all_input_nodes
                                     if a is not first):
        return False
    if node.op == "call_method":
        return node.target in _META_METHODS
    return node.op == "call_function" and node.target is getattr \
        and len(node.args) == 2 and node.args[1] in _META_ATTRS


def _linear_rule(node: fx.Node, dependent: set, root: nn.Module) -> bool:
    """Whether ``node``'s output is linear in its changing input(s)."""
    deps = [a for a in _flat_args(node) if isinstance(a, fx.Node) and a in dependent]
    if node.op == "call_module":
        module = root.get_submodule(node.target)
        return len(node.args) >= 1 and node.args[0] in dependent and len(deps) == 1 \
            and not node.kwargs and is_linear_module(module)
    target = node.target
    if node.op not in ("call_function", "call_method"):
        return False
    if target in _ADD or target in _SUB:
        return "alpha" not in node.kwargs and len(node.args) == 2
    first_dep = bool(node.args) and node.args[0] in dependent
    if target in _NEG:
        return len(node.args) == 1
    if target in _MUL:
        return len(node.args) == 2 and len(deps) == 1 and not node.kwargs
    if target in _DIV:
        return len(node.args) == 2 and len(deps) == 1 and first_dep and not node.kwargs
    if node.op == "call_function" and target in _SHAPE_FNS:
        return first_dep and len(deps) == 1
    if node.op == "call_method" and target in _SHAPE_METHODS:
        return first_dep and len(deps) == 1
    return False


def _flat_args(node: fx.Node) -> list:
    out: list = []
    fx.node.map_aggregate((node.args, node.kwargs), lambda a: out.append(a) or a)
    return out


def _fetch_attr(root: nn.Module, target: str) -> Any:
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


# --- a change through the traced graph ------------------------------------------------


def propagate(block: Block, x: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """The change of ``block``'s output for rows ``x`` of its input when its site's
    output changes by ``change``."""
    values: dict = {}
    deltas: dict = {block.site_node: change}
    wanted = set(block.needed)

    def value(a):
        return fx.node.map_arg(a, lambda n: values[n] if n in values else
                               now(deltas[n]) if n in deltas else _missing(n))

    for node in block.graph.nodes:
        if node.op == "output":
            return deltas[node.args[0]]
        if node in wanted or node in block.meta:
            values[node] = _evaluate(node, block.root, x, value)
        elif node in block.dependent and node is not block.site_node:
            deltas[node] = _delta(node, block.root, value, deltas, values)
    raise RuntimeError("the traced block has no output")


def _missing(node):
    raise RuntimeError(f"no value for {node} in the traced sweep")


def _evaluate(node: fx.Node, root: nn.Module, x: torch.Tensor, value: Callable):
    if node.op == "placeholder":
        return x
    if node.op == "get_attr":
        return _fetch_attr(root, node.target)
    args, kwargs = value(node.args), value(node.kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    if node.op == "call_module":
        return root.get_submodule(node.target)(*args, **kwargs)
    raise RuntimeError(f"cannot evaluate {node.op} in a traced sweep")


def _delta(node: fx.Node, root: nn.Module, value: Callable, deltas: dict, values: dict):
    """The change of a linear node's output from the changes of its inputs (a
    :class:`Lazy` where it is a linear map of an earlier change)."""
    target = node.target
    if node.op == "call_module":
        return lazy_linear_change(root.get_submodule(target), deltas[node.args[0]])
    a, b = (node.args + (None, None))[:2]
    if target in _ADD or target in _SUB:
        sign = -1 if target in _SUB else 1
        shape = torch.broadcast_shapes(*(_shape(v, deltas, values) for v in (a, b)))
        changing = [(operand, s) for operand, s in ((a, 1), (b, sign))
                    if isinstance(operand, fx.Node) and operand in deltas]
        if len(changing) == 1 and isinstance(deltas[changing[0][0]], (Lazy, Boxed)) \
                and tuple(deltas[changing[0][0]].shape) == tuple(shape):
            # A residual add: the change passes through, still unevaluated.
            lazy = deltas[changing[0][0]]
            return lazy if changing[0][1] == 1 else lazy.scaled(-1.0)
        total = None
        for operand, s in changing:
            part = now(deltas[operand]) if s == 1 else -now(deltas[operand])
            total = part if total is None else total + part
        return total.expand(shape) if tuple(total.shape) != tuple(shape) else total
    if target in _NEG:
        return deltas[a].scaled(-1.0) if isinstance(deltas[a], (Lazy, Boxed)) \
            else -deltas[a]
    if isinstance(a, fx.Node) and isinstance(deltas.get(a), Boxed):
        moved = _move_box(node, deltas[a], value)
        if moved is not None:
            return moved
    if target in _MUL:
        if isinstance(a, fx.Node) and a in deltas:
            return now(deltas[a]) * value(b)
        return value(a) * now(deltas[b])
    if target in _DIV:
        return now(deltas[a]) / value(b)
    args, kwargs = value(node.args), value(node.kwargs)
    if node.op == "call_function":
        return target(*args, **kwargs)
    return getattr(args[0], target)(*args[1:], **kwargs)


def _shape(v, deltas: dict, values: dict) -> tuple:
    if isinstance(v, fx.Node):
        v = deltas[v] if v in deltas else values[v]
    return tuple(v.shape) if isinstance(v, (torch.Tensor, Lazy, Boxed)) else ()


def _move_box(node: fx.Node, box: Boxed, value: Callable) -> Optional[Boxed]:
    """``box`` through a transpose, permute, reshape, view, flatten or contiguous;
    ``None`` for anything else (the change is then written out in full)."""
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    rest, ndim = value(node.args[1:]), len(box.shape)
    if node.kwargs:
        return None
    if name == "contiguous":
        return box
    if name in ("transpose", "swapaxes") and len(rest) == 2:
        dims = list(range(ndim))
        d0, d1 = rest[0] % ndim, rest[1] % ndim
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return box.permuted(dims)
    one = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
    if name == "permute":
        return box.permuted(list(one))
    if name in ("reshape", "view") and all(isinstance(d, int) for d in one):
        return box.reshaped(list(one))
    if name == "flatten" and len(rest) <= 2:
        lo = rest[0] % ndim if rest else 0
        hi = rest[1] % ndim if len(rest) > 1 else ndim - 1
        return box.reshaped([*box.shape[:lo], prod(box.shape[lo:hi + 1]), *box.shape[hi + 1:]])
    return None
