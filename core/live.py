"""A live ``torch.nn.Module`` from the user's script or notebook, with their arrays as the
evaluation data: what :func:`mechscope.show` opens (issue #15).

A live module cannot be pickled to the compute process, so it runs in the calling
process, in an in-process :class:`core.session.Session`. Everything that can be wrong
with the arguments is found here, before a window opens, and said in one sentence
(``TypeError`` for a wrong kind of argument, ``ValueError`` for a wrong value).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from core.adapters.torch_adapter import TorchAdapter
from core.errors import ForwardError, MechscopeError
from core.files.array_data import data_kind, dataset_from_arrays
from core.files.opening import Opened
from core.kinds import LayerView, ModelKind
from core.zoo import ZOO, ZooEntry

log = logging.getLogger(__name__)

RESUMES = "ablations rerun only the layers after the change (nn.Sequential)"
RERUNS = "each ablation reruns the whole forward pass (your model is not an nn.Sequential)"
#: Where the status line and the accuracy panel say the data came from.
SOURCE = "the arrays given to show()"
KIND_WORDS = {ModelKind.IMAGE: "images", ModelKind.TOKENS: "token sequences",
              ModelKind.VALUES: "rows"}


class LiveAdapter(TorchAdapter):
    """A :class:`TorchAdapter` whose forward errors are said as the user's own (their
    model's code raised), in the window's message bar, not as a bug of Mechscope's."""

    def run(self, *args, **kwargs):
        return _theirs(self.name, super().run, args, kwargs)

    def run_from(self, *args, **kwargs):
        return _theirs(self.name, super().run_from, args, kwargs)

    def run_sweep(self, *args, **kwargs):
        return _theirs(self.name, super().run_sweep, args, kwargs)


def _theirs(name: str, fn, args, kwargs):
    try:
        return fn(*args, **kwargs)
    except MechscopeError:
        raise
    except Exception as exc:  # noqa: BLE001 — the user's forward: any error is theirs
        log.warning("the forward pass of %s failed", name, exc_info=True)
        raise ForwardError(f"{name}'s forward pass failed ({type(exc).__name__}: {exc}); "
                           "the window keeps the results it had.") from None


def resume_note(module: nn.Module) -> str:
    """Whether an ablation resumes from the changed layer or reruns the model, for the
    status line (:attr:`core.api.ModelInfo.note`); :class:`TorchAdapter` resumes only
    from the children of an ``nn.Sequential``."""
    return RESUMES if isinstance(module, nn.Sequential) else RERUNS


def as_array(value, what: str) -> np.ndarray:
    """A numpy copy of a numpy array or a torch tensor (detached, on the CPU): the
    session's data is frozen read-only, and must neither freeze the caller's array nor
    change when the caller changes it later."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, (np.ndarray, list, tuple)):
        return np.array(value, copy=True)
    raise TypeError(f"{what} must be a numpy array or a torch tensor, not "
                    f"{type(value).__name__}.")


class TrainingFlags:
    """Every submodule's ``training`` flag, taken before the session puts the module in
    eval mode and put back when the window closes (a user may keep training it)."""

    def __init__(self, module: nn.Module) -> None:
        self._flags = [(m, m.training) for m in module.modules()]

    def restore(self) -> None:
        for module, training in self._flags:
            module.training = training


@dataclass(frozen=True)
class LiveModel:
    """A live module made ready to open: its Model-box entry and what to install."""

    entry: ZooEntry
    opened: Opened
    flags: TrainingFlags

    @property
    def name(self) -> str:
        return self.entry.name

    def restore(self) -> None:
        """Put the module's training flags back as they were before :func:`prepare`."""
        self.flags.restore()


def prepare(module, inputs, labels, class_names: Optional[Sequence[str]] = None,
            layer: Optional[str] = None, title: Optional[str] = None) -> LiveModel:
    """Check ``module`` with ``inputs`` and ``labels`` and wrap them for the session.

    Parameters
    ----------
    module : nn.Module
        Any architecture; it is put in eval mode (see :meth:`LiveModel.restore`).
    inputs : (N, C, H, W) images, (N, T) integer token ids or (N, F) rows
        numpy arrays or torch tensors.
    labels : (N,) class indices, or (N, T) next tokens for token ids (-1: not scored)
    class_names : sequence of str, optional
        One per output of the model; ``"0"``, ``"1"``, … if not given.
    layer : str, optional
        The site (a ``named_modules`` path) shown first.
    title : str, optional
        What the window calls the model.

    Raises
    ------
    TypeError
        ``module`` is no ``nn.Module``, or the data are not arrays.
    ValueError
        The data cannot be used, the forward pass fails on the first example, its
        output is not one score per class, or ``layer`` does not exist.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"mechscope.show needs a torch.nn.Module, not "
                        f"{type(module).__name__}; Keras and ONNX models open as files "
                        "(File › Open).")
    x = as_array(inputs, "inputs")
    y = as_array(labels, "labels")
    device = next((p.device for p in module.parameters() if p.device.type != "cpu"), None)
    if device is not None:
        raise ValueError(f"The model's parameters are on {device}; Mechscope runs it on "
                         "the CPU: pass model.cpu() (and move it back after the window "
                         "closes).")
    dtype = next((p.dtype for p in module.parameters()
                  if p.is_floating_point() and p.dtype != torch.float32), None)
    if dtype is not None:
        raise ValueError(f"The model's parameters are {dtype}; Mechscope feeds it float32 "
                         "inputs: pass model.float().")
    flags = TrainingFlags(module)
    try:
        live = _wrap(module, x, y, class_names, layer, title)
    except BaseException:
        flags.restore()  # nothing opened: the module is left as it came
        raise
    return LiveModel(live[0], live[1], flags)


def _wrap(module: nn.Module, x: np.ndarray, y: np.ndarray, class_names, layer, title):
    try:
        # The arrays alone first (shapes, dtypes, NaNs, labels), with the sentences a
        # .npz of the user's gets; then against the model's output size.
        dataset_from_arrays("show()", x, y)
        kind = data_kind(x)
        dtype = np.int64 if kind is ModelKind.TOKENS else np.float32
        n_outputs = _outputs(module.eval(), np.ascontiguousarray(x[:1], dtype), kind)
        if class_names is not None:
            class_names = tuple(str(c) for c in class_names)
            if len(class_names) != n_outputs:
                raise ValueError(f"{len(class_names)} class names were given, but the "
                                 f"model puts out {n_outputs} scores.")
        dataset = dataset_from_arrays("show()", x, y, class_names, n_outputs)
    except MechscopeError as exc:
        raise ValueError(str(exc)) from None
    shape = "×".join(str(n) for n in x.shape[1:])
    dataset = replace(dataset, name=f"{KIND_WORDS.get(dataset.kind, 'examples')} {shape}")
    name = _name(module)
    try:
        adapter = LiveAdapter(module, name, x.shape[1:], dtype)
    except Exception as exc:  # noqa: BLE001 — the user's model: any error is theirs to see
        raise ValueError(f"Mechscope could not trace {name}'s layers on inputs of shape "
                         f"{x.shape[1:]} ({type(exc).__name__}: {exc}).") from None
    default = _default_layer(adapter.layers(), layer)
    title = title or f"{name} (your model, from mechscope.show)"
    entry = ZooEntry(name=name, title=title, weights="", dataset=dataset.name,
                     input_shape=adapter.input_shape, default_layer=default,
                     trained_by="your script", builder=lambda: module, kind=dataset.kind)
    return entry, Opened(adapter, dataset, title, default, note=resume_note(module))


def _outputs(module: nn.Module, first: np.ndarray, kind: ModelKind) -> int:
    """The number of classes the model scores, from one forward pass of the first
    example; a forward that fails is the user's error, said with its own message."""
    try:
        with torch.inference_mode():
            out = module(torch.from_numpy(first.copy()))
    except Exception as exc:  # noqa: BLE001 — the user's forward: any error is theirs
        raise ValueError(f"The model's forward pass failed on the first example (input "
                         f"shape {tuple(first.shape)}): {type(exc).__name__}: {exc}") from None
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"The model returns {type(out).__name__}; Mechscope needs it to "
                         "return one tensor of scores (logits).")
    wanted = (1, first.shape[1], None) if kind is ModelKind.TOKENS else (1, None)
    if out.ndim != len(wanted) or any(w is not None and w != s
                                      for w, s in zip(wanted, out.shape)):
        what = ("(N, T, vocabulary) next-token scores for (N, T) token ids"
                if kind is ModelKind.TOKENS else "(N, classes) scores")
        raise ValueError(f"The model's output has shape {tuple(out.shape)} for one "
                         f"example; Mechscope needs {what}.")
    return int(out.shape[-1])


def _name(module: nn.Module) -> str:
    """The class name, kept apart from a built-in model's name (the Model box lists
    both, and choosing one must not open the other)."""
    name = type(module).__name__
    return f"{name} (live)" if name in ZOO else name


def _default_layer(layers, wanted: Optional[str]) -> str:
    """``wanted`` if the model has it; else the first conv-like layer, else the first."""
    names = [info.name for info in layers]
    if not names:
        raise ValueError("The model has no submodules to look inside; Mechscope shows "
                         "the outputs of a model's layers (its named_modules).")
    if wanted is not None:
        if wanted not in names:
            shown = ", ".join(names[:12]) + (", …" if len(names) > 12 else "")
            raise ValueError(f"The model has no layer {wanted!r}; its layers are {shown}.")
        return wanted
    return next((info.name for info in layers if info.view is LayerView.CHANNELS), names[0])
