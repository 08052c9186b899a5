"""Sites inside a TorchScript model, so :class:`~core.adapters.torch_adapter.TorchAdapter`
can capture and ablate its layers as it does an eager module's (issue #15).

ScriptModules refuse forward hooks. Instead, every call of a submodule in the loaded
module's graphs is wrapped in three custom operators (``mechscope::enter`` before,
``mechscope::site`` on the tensor it returns, or ``mechscope::leave`` when it returns
something else); they are plain Python, so they can run the forward hooks that torch
code registers on a mirror of the module tree (:class:`ScriptModel`): one ``nn.Module``
proxy per submodule, with the same names, so ``named_modules`` lists the sites and
:mod:`core.adapters.torch_hooks` works unchanged.

TorchScript compiles one graph per class and shares it between instances (two blocks
of one class run the same graph), so a graph knows its calls only by names relative
to its own module. The operators keep a stack of the names entered at run time, and
a site's full name is the stack joined with its own.

The graphs are changed in place before the module first runs (its executor copies and
optimises them then). The operators are declared with conservative alias analysis:
to the optimiser they have side effects, so none is removed or moved, even where the
result of a call is not used.
"""

from __future__ import annotations

import threading
import warnings
from typing import Optional

import torch
from torch import nn

from core.errors import ModelLoadError

_NAMESPACE = "mechscope"
_library: Optional[torch.library.Library] = None
_lock = threading.Lock()
# The run in progress on each thread: its model and the names entered so far.
_local = threading.local()


class _Run:
    def __init__(self, model: "ScriptModel") -> None:
        self.model = model
        self.stack: list[str] = []
        #: The exception a hook raised: TorchScript rethrows it as a RuntimeError,
        #: and :class:`ScriptModel` raises the original again (``_StopForward``
        #: included, which ends a run early on purpose).
        self.error: Optional[BaseException] = None


def _run() -> Optional[_Run]:
    return getattr(_local, "run", None)


def _full(run: _Run, name: str) -> str:
    return ".".join([*run.stack, name])


def _enter(first: Optional[torch.Tensor], name: str) -> None:
    run = _run()
    if run is None:  # the script module called outside a ScriptModel: nothing to do
        return
    proxy = run.model.sites.get(_full(run, name))
    run.stack.append(name)
    if proxy is None or not proxy._forward_pre_hooks or first is None:
        return
    for hook in list(proxy._forward_pre_hooks.values()):
        try:
            changed = hook(proxy, (first,))
        except BaseException as exc:
            run.error = exc
            raise
        if changed is not None:
            run.error = RuntimeError("A TorchScript layer's input cannot be replaced.")
            raise run.error


def _leave(name: str) -> None:
    run = _run()
    if run is not None and run.stack:
        run.stack.pop()


def _site(out: torch.Tensor, first: Optional[torch.Tensor], name: str) -> torch.Tensor:
    run = _run()
    if run is None:
        return out
    if run.stack:
        run.stack.pop()
    proxy = run.model.sites.get(_full(run, name))
    if proxy is None or not proxy._forward_hooks:
        return out
    inputs = (first,) if first is not None else ()
    for hook in list(proxy._forward_hooks.values()):
        try:
            result = hook(proxy, inputs, out)
        except BaseException as exc:
            run.error = exc
            raise
        if result is not None:
            out = result
    return out


def _register() -> None:
    """Declare the operators once per process (a forked child inherits them)."""
    global _library
    with _lock:
        if _library is not None:
            return
        lib = torch.library.Library(_NAMESPACE, "DEF")
        lib.define("enter(Tensor? first, str name) -> ()", alias_analysis="CONSERVATIVE")
        lib.define("leave(str name) -> ()", alias_analysis="CONSERVATIVE")
        lib.define("site(Tensor out, Tensor? first, str name) -> Tensor",
                   alias_analysis="CONSERVATIVE")
        # Implicit autograd: the hooks' own torch ops are differentiated through, so
        # gradients reach the input (feature visualisation) like in an eager module.
        for name, fn in (("enter", _enter), ("leave", _leave), ("site", _site)):
            lib.impl(name, fn, "CompositeImplicitAutograd")
        _library = lib


def _path(value, self_value) -> Optional[str]:
    """``a.b`` for a value that is ``self.a.b`` (a chain of attribute reads from the
    graph's own module), else ``None``."""
    names = []
    while value is not self_value:
        node = value.node()
        if node.kind() != "prim::GetAttr":
            return None
        names.append(node.s("name"))
        value = node.input()
    return ".".join(reversed(names))


def _is_tensor(value) -> bool:
    return value.type().isSubtypeOf(torch._C.TensorType.get())


def _mark_graph(graph) -> int:
    """Wrap every call of a submodule's method in ``graph``; the number of sites."""
    self_value = next(graph.inputs())
    sites = 0
    for node in list(graph.nodes()):
        if node.kind() != "prim::CallMethod":
            continue
        inputs = list(node.inputs())
        name = _path(inputs[0], self_value)
        if not name:  # a method of the module itself: its graph is marked on its own
            continue
        label = graph.insertConstant(name)
        label.node().moveBefore(node)
        first = next((v for v in inputs[1:] if _is_tensor(v)), None)
        if first is None:
            first = graph.insertConstant(None)
            first.node().moveBefore(node)
        graph.create(f"{_NAMESPACE}::enter", [first, label], 0).insertBefore(node)
        out = node.output() if node.outputsSize() == 1 else None
        if node.s("name") == "forward" and out is not None and _is_tensor(out):
            site = graph.create(f"{_NAMESPACE}::site", [out, first, label], 1)
            site.insertAfter(node)
            site.output().setType(out.type())
            out.replaceAllUsesAfterNodeWith(site, site.output())
            sites += 1
        else:
            graph.create(f"{_NAMESPACE}::leave", [label], 0).insertAfter(node)
    return sites


def mark(module: torch.jit.ScriptModule) -> int:
    """Mark every method graph of ``module`` and its submodules, each shared graph
    (one per TorchScript type) once; the number of sites marked."""
    _register()
    done: set[str] = set()
    sites = 0

    def visit(mod) -> None:
        nonlocal sites
        key = mod._c._type().qualified_name()
        if key not in done:
            done.add(key)
            for method in mod._c._method_names():
                sites += _mark_graph(mod._c._get_method(method).graph)
        for child in mod.children():
            visit(child)

    visit(module)
    return sites


class ScriptSite(nn.Module):
    """A submodule of a TorchScript model, as a site: its hooks are run by the
    operators, never by calling it. It owns the submodule's own parameters (the same
    tensors), so counts are right and scaling a weight scales the script's."""

    def __init__(self, script) -> None:
        super().__init__()
        self.original_name = getattr(script, "original_name", type(script).__name__)
        inplace = getattr(script, "inplace", False)
        # In-place layers can overwrite a captured tensor later; the adapter clones then.
        self.inplace = inplace if isinstance(inplace, bool) else False
        for name, tensor in script.named_parameters(recurse=False):
            self.register_parameter(name, nn.Parameter(tensor, tensor.requires_grad))
        for name, child in script.named_children():
            self.add_module(name, _proxy(child))

    def forward(self, *args):
        raise RuntimeError(f"{self.original_name} runs inside its TorchScript model.")

    def extra_repr(self) -> str:
        return f"TorchScript {self.original_name}"


_KINDS: dict[str, type] = {}
_SETTINGS = (int, float, bool, str, tuple, type(None))


def _builtin(script) -> Optional[nn.Module]:
    """A real ``torch.nn`` layer (``Conv2d``, ``Linear``, ``ReLU`` …) with the settings
    and the very weight tensors of a scripted one, so the views that read a layer's
    weights (unit weights, weights to the classes) work as on an eager model; ``None``
    for any other class, or when the copy would not be exact."""
    import inspect

    kind = str(getattr(script, "original_name", ""))
    cls = getattr(nn, kind, None)
    if ".torch.nn.modules." not in script._c._type().qualified_name() or \
            not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return None
    try:
        params = inspect.signature(cls.__init__).parameters
        settings = {}
        for name in params:
            if name in ("self", "device", "dtype") or name.startswith("_"):
                continue
            if name == "bias" and isinstance(params[name].default, bool):
                settings[name] = getattr(script, "bias", None) is not None
            elif hasattr(script, name) and isinstance(getattr(script, name), _SETTINGS):
                settings[name] = getattr(script, name)
        layer = cls(**settings, device="meta") if "device" in params else cls(**settings)
        tensors = {**dict(script.named_parameters(recurse=False)),
                   **dict(script.named_buffers(recurse=False))}
        for name, tensor in tensors.items():
            if name in layer._parameters:
                setattr(layer, name, nn.Parameter(tensor, tensor.requires_grad))
            elif name in layer._buffers:
                layer._buffers[name] = tensor
        ours = dict(layer.named_parameters(recurse=False))
        ours.update(layer.named_buffers(recurse=False))
    except Exception:  # noqa: BLE001 — a layer of another torch version: a plain site
        return None
    if set(ours) != set(tensors) or any(ours[n] is not tensors[n] and
                                        ours[n].data_ptr() != tensors[n].data_ptr()
                                        for n in ours):
        return None
    return layer


def _proxy(script) -> nn.Module:
    """The site for a scripted submodule: a real ``torch.nn`` layer where it is one
    (:func:`_builtin`), else a :class:`ScriptSite` whose class is named like the
    script's (``Block``), for the layer tree's kind column."""
    if next(script.children(), None) is None:
        layer = _builtin(script)
        if layer is not None:
            return layer
    name = str(getattr(script, "original_name", "ScriptSite"))
    if not name.isidentifier():
        name = "ScriptSite"
    kind = _KINDS.get(name)
    if kind is None:
        kind = _KINDS[name] = type(name, (ScriptSite,), {"__module__": __name__})
    return kind(script)


class ScriptModel(nn.Module):
    """A loaded TorchScript module as an ``nn.Module`` whose submodules are its sites.

    Parameters
    ----------
    script : torch.jit.ScriptModule
        Loaded and not yet run (its graphs are marked here, see :func:`mark`).
    name : str
        The file's name, for messages.
    """

    def __init__(self, script, name: str = "the model") -> None:
        super().__init__()
        if mark(script) == 0:
            raise ModelLoadError(f"{name} is TorchScript without submodule calls (frozen "
                                 "or inlined), so it has no layers to look inside; save "
                                 "it with torch.jit.save(torch.jit.script(model), path) "
                                 "before freezing.")
        self.__dict__["script"] = script  # not a submodule: the proxies stand for it
        for child_name, child in script.named_children():
            self.add_module(child_name, _proxy(child))
        for param_name, tensor in script.named_parameters(recurse=False):
            self.register_parameter(param_name, nn.Parameter(tensor, tensor.requires_grad))
        self.sites = {n: m for n, m in self.named_modules() if n}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        previous, run = _run(), _Run(self)
        _local.run = run
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return self.script(x)
        except Exception:
            if run.error is not None:
                raise run.error from None
            raise
        finally:
            _local.run = previous

    def train(self, mode: bool = True) -> "ScriptModel":
        super().train(mode)
        self.script.train(mode)
        return self
