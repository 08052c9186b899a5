"""A Keras 3 model, run on Keras's torch backend, through the torch adapter's machinery.

On the torch backend every Keras layer is a ``torch.nn.Module`` whose forward hooks fire
with the layer's output, so capture, ablation, stopping early and batched sweeps are the
torch adapter's own. What differs is told here:

- the sites are ``model.layers`` under their Keras names (a Keras model does not list its
  layers as torch children), held by :class:`KerasModule`, whose forward converts the
  app's channels-first images to Keras's channels-last;
- a channels-last map (H, W, C) is reported as (C, H, W), so the channel grid draws it
  like any conv layer: captured maps and dataset means cross between the two layouts,
  and units are ablated along the last axis of the batched output;
- parameters are counted by Keras (its layers keep their variables in a
  ``ParameterDict`` child, which the torch count per module would not see).

Importing keras picks its backend once per process: :func:`import_keras` sets it to
torch before the first import and refuses clearly when keras already runs on another.
"""

from __future__ import annotations

import os
import sys
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from core.ablation import Ablation
from core.adapters import torch_shapes
from core.adapters.torch_adapter import TorchAdapter
from core.errors import ModelLoadError
from core.jobs import CancelToken
from core.model import LayerInfo, RunResult

#: What to install when keras is missing (the optional extra of pyproject.toml).
INSTALL = 'pip install "mechscope[keras]" (from a checkout: pip install ".[keras]")'


def import_keras():
    """``keras``, imported on its torch backend, on the CPU like every torch model here.

    Raises
    ------
    ModelLoadError
        Keras is not installed, or this process imported it with another backend
        (the backend cannot change once keras is imported).
    """
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "torch"
        # Keras would otherwise put its weights on a GPU, where the adapter's numpy
        # round trips cannot reach them.
        os.environ["KERAS_TORCH_DEVICE"] = "cpu"
    try:
        import keras
    except ImportError:
        raise ModelLoadError(f"Opening Keras files needs Keras 3 and h5py: {INSTALL}.") \
            from None
    backend = keras.config.backend()
    if backend != "torch":
        raise ModelLoadError(f"Keras is already running on its {backend} backend in this "
                             "process; Mechscope runs Keras models on the torch backend. "
                             "Start Mechscope in a fresh process (without importing keras "
                             "first, or with KERAS_BACKEND=torch).")
    if not str(keras.__version__).startswith("3."):
        raise ModelLoadError(f"Keras {keras.__version__} is installed; Mechscope opens "
                             f"Keras files with Keras 3: {INSTALL}.")
    return keras


def channels_last(model) -> bool:
    """Whether the model's image layers keep channels last (Keras's default): all but a
    model whose every layer with a ``data_format`` says ``channels_first``."""
    formats = {getattr(layer, "data_format", None) for layer in model.layers} - {None}
    return formats != {"channels_first"}


class KerasModule(nn.Module):
    """The Keras model as a torch module whose children are its layers, under their
    Keras names, and whose forward takes the app's layout.

    Parameters
    ----------
    model : keras.Model
    image_input : bool
        The model reads channels-last images (N, H, W, C): the forward takes (N, C, H, W)
        and transposes them.
    """

    def __init__(self, model, image_input: bool) -> None:
        super().__init__()
        # Not a child: its layers are, and the Keras model would list them once more.
        object.__setattr__(self, "keras_model", model)
        self.image_input = image_input
        for layer in model.layers:
            if "." in layer.name or hasattr(self, layer.name):
                raise ModelLoadError(f"The Keras model has a layer named {layer.name!r}, a "
                                     "name that cannot be a layer's here (it holds a dot, "
                                     "or torch uses it); rename the layer and save again.")
            self.add_module(layer.name, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_input:
            x = x.permute(0, 2, 3, 1)
        out = self.keras_model(_as_declared(self.keras_model, x), training=False)
        if not isinstance(out, torch.Tensor):
            raise ModelLoadError("The Keras model gives several outputs; Mechscope reads "
                                 "models with one output of scores per class.")
        return out


def _as_declared(model, x: torch.Tensor):
    """``x`` in the structure the functional model was built with (``[x]`` for
    ``keras.Model([inp], out)``): Keras warns about any other."""
    struct = getattr(model, "_inputs_struct", None)
    if isinstance(struct, dict):
        return {key: x for key in struct}
    if isinstance(struct, (list, tuple)):
        return type(struct)([x])
    return x


def input_signature(model) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(one example's input shape as the app gives it, its dtype, whether it is an
    image the forward transposes) from the model's input layer.

    Raises
    ------
    ModelLoadError
        Several inputs, or an input with a free size other than the batch.
    """
    try:
        inputs = list(model.inputs or ())
    except (AttributeError, ValueError):  # a Sequential model that was never built
        inputs = []
    if len(inputs) != 1:
        raise ModelLoadError(f"The Keras model has {len(inputs) or 'no'} inputs; "
                             "Mechscope reads models with one input.")
    shape = tuple(inputs[0].shape[1:])
    if any(s is None for s in shape):
        raise ModelLoadError(f"The Keras model's input {_shape_words(shape)} has a free "
                             "size; Mechscope needs a fixed input shape.")
    dtype = np.dtype(str(inputs[0].dtype))
    image = len(shape) == 3 and channels_last(model)
    if image:
        shape = (shape[2], shape[0], shape[1])
    return tuple(int(s) for s in shape), dtype, image


def _shape_words(shape) -> str:
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"


class KerasAdapter(TorchAdapter):
    """A Keras 3 model on the torch backend.

    Parameters
    ----------
    model : keras.Model
        Loaded with ``KERAS_BACKEND=torch`` (see :func:`import_keras`).
    name : str
        Name shown to the user.
    """

    def __init__(self, model, name: str) -> None:
        input_shape, dtype, image = input_signature(model)
        self.keras_model = model
        self._last = channels_last(model)
        #: Sites whose output is a channels-last map, reported as (C, H, W).
        self._maps: set[str] = set()
        super().__init__(KerasModule(model, image), name, input_shape, dtype)
        for site in self._maps:
            self._axes[site] = 3  # channels: the last axis of (N, H, W, C)
        # No resuming: a functional graph is not its layers one after another.
        self._resumable = []

    def _describe(self) -> tuple[LayerInfo, ...]:
        """Every layer that runs in the forward pass, with the shape it outputs (maps
        as (C, H, W)) and Keras's count of its parameters."""
        # A real pass: the shape pass swaps in forwards on torch containers, which
        # Keras layers are not meant to be.
        shapes = torch_shapes.real_shapes(self.model, self.input_shape, self.input_dtype)
        infos = []
        for layer in self.keras_model.layers:
            shape = shapes.get(layer.name)
            if shape is None or len(shape) > 3:  # never ran (the input), or 3-D maps
                continue
            if len(shape) == 3 and self._last:
                self._maps.add(layer.name)
                shape = (shape[2], shape[0], shape[1])
            infos.append(LayerInfo(layer.name, type(layer).__name__, shape,
                                   1 if len(shape) == 2 else 0, int(layer.count_params())))
        return tuple(infos)

    def _native_means(self, means: Optional[Mapping]) -> Optional[Mapping]:
        """Dataset means (the app's (C, H, W) per map) in the layout the layers give."""
        if not means:
            return means
        return {site: np.moveaxis(np.asarray(m), 0, -1)
                if site in self._maps and np.ndim(m) == 3 else m
                for site, m in means.items()}

    def run(self, inputs: np.ndarray, capture: Sequence[str] = (),
            ablations: Sequence[Ablation] = (), means: Optional[Mapping] = None,
            stop_after: Optional[str] = None,
            token: Optional[CancelToken] = None) -> RunResult:
        result = super().run(inputs, capture, ablations, self._native_means(means),
                             stop_after, token)
        acts = {site: np.ascontiguousarray(np.moveaxis(a, -1, 1))
                if site in self._maps else a for site, a in result.activations.items()}
        return RunResult(result.outputs, acts, result.report)

    def sweep_plan(self, site: str):
        """Always the replicated forward pass: the shortcuts of
        :mod:`core.adapters.torch_sweep` read torch layer types, not Keras's."""
        return None

    def run_sweep(self, site: str, units: Sequence[int], mode: str,
                  means: Optional[Mapping], inputs: np.ndarray,
                  resume: Optional[str] = None,
                  cached: Optional[Mapping[str, np.ndarray]] = None) -> np.ndarray:
        return super().run_sweep(site, units, mode, self._native_means(means), inputs,
                                 None, None)

    def unit_weights(self, site: str, unit: int, labels: Sequence[str] = ()):
        """``None``: Keras kernels are laid out (H, W, in, out), not as the torch layer
        types the weight pictures read."""
        return None

    def output_weights(self, site: str, unit: int) -> Optional[np.ndarray]:
        """``None`` (see :meth:`unit_weights`)."""
        return None
