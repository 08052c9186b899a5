"""The session's user-file side: your model files (weights, code to trust, ONNX), your
evaluation data, your drawings. A mixin of :class:`core.session.Session`, kept apart so
each module stays readable; it uses the session's ``_install``/``_require``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from core.datasets import Dataset, load_digits
from core.errors import InputError, ModelLoadError
from core.files.images import ConvertedImage
from core.jobs import CancelToken, report
from core.zoo import ZOO


class UserFilesMixin:
    """Opening what the user brings."""

    def convert_drawing(self, gray: np.ndarray,
                        token: Optional[CancelToken] = None) -> ConvertedImage:
        """A drawing from the canvas, (h, w) 0..1, converted like an image file."""
        from core.files.images import convert_gray

        self._require()
        return self._respecified(convert_gray(np.asarray(gray, np.float32), "your drawing"))

    def _respecified(self, converted: ConvertedImage) -> ConvertedImage:
        """For a model with its own input spec, the 8x8 digit converted to that input."""
        spec = getattr(self, "_spec", None)
        if spec is None or self.adapter is None or \
                tuple(spec.shape) != tuple(self.adapter.input_shape):
            return converted
        from dataclasses import replace

        model_input = spec.apply(converted.digit[None])[0]
        model_input.setflags(write=False)
        return replace(converted, model_input=model_input,
                       steps=converted.steps[:-1] + (f"converted to {spec.describe()}",))

    def open_checkpoint(self, path: str, trusted_sha256: Optional[str] = None,
                        spec=None, token: Optional[CancelToken] = None):
        """Open a user's weights file (state_dict .pt/.pth, safetensors; a pickled
        module or TorchScript only with ``trusted_sha256``) on the architecture it fits.

        Raises :class:`core.files.checkpoints.NeedsTrust` or :class:`ModelLoadError`; the model
        open before stays open either way.
        """
        from core.adapters.torch_adapter import TorchAdapter
        from core.files.checkpoints import as_torch_state, open_checkpoint

        report(token, 0.1, f"reading {Path(path).name} in a sandbox process…")
        entry, state, result = open_checkpoint(path, trusted_sha256)
        if entry is None:
            return self._open_onnx(path, result.sha256, spec, token)
        model = entry.builder()
        model.load_state_dict(as_torch_state(state), strict=True)
        dtype = "float32" if entry.kind == "image" else "int64"
        adapter = TorchAdapter(model, f"{entry.name} ← {Path(path).name}", entry.input_shape,
                               dtype)
        title = f"{entry.name} with the weights of {Path(path).name}"
        return self._install(adapter, _datasets()[entry.dataset](), title, entry.default_layer,
                             token)

    def _open_onnx(self, path: str, sha256: str, spec, token: Optional[CancelToken]
                   ):
        """An ONNX model on the dataset whose inputs it takes — or, given an input spec
        (asked once from the user), on the digits converted to that input."""
        from core.adapters.onnx_adapter import OnnxAdapter
        from core.files.checkpoints import NeedsInputSpec
        from core.files.preprocess import guess

        name = Path(path).name
        try:
            adapter = OnnxAdapter(path, name)
        except (ValueError, KeyError) as exc:
            raise ModelLoadError(f"{name}: {exc}") from exc
        for entry in ZOO.values():
            if entry.kind == "image" and entry.input_shape == adapter.input_shape \
                    and spec is None:
                title = f"{name} (ONNX) on the {entry.dataset} data"
                return self._install(adapter, _datasets()[entry.dataset](), title,
                                     adapter.layers()[0].name, token)
        if spec is None:
            first = guess(adapter.input_shape, name)
            raise NeedsInputSpec(f"{name} reads {first.channels}×{first.height}×"
                                 f"{first.width} images: how should their values be "
                                 "scaled?", path, sha256, first)
        if tuple(spec.shape) != tuple(adapter.input_shape):
            raise ModelLoadError(f"{name} reads {adapter.input_shape}, not {spec.shape}.")
        digits = load_digits("eval")
        data = Dataset(f"digits (eval) as {spec.describe()}", spec.apply(digits.display),
                       digits.labels, digits.class_names, digits.display, digits.groups,
                       digits.group_names)
        info = self._install(adapter, data, f"{name} (ONNX), input {spec.describe()}",
                             adapter.layers()[0].name, token)
        self._spec = spec
        return info

    def use_dataset(self, path: str, token: Optional[CancelToken] = None):
        """Evaluate the open model on the user's own labelled data (a folder with one
        sub-folder per class, .npz or .csv); the previous data stays if this fails."""
        from core.files.user_data import load_user_data

        adapter, dataset, _ = self._require()
        if dataset.kind != "image":
            raise InputError("Your own data can be used with image models for now.")
        data = load_user_data(path, dataset.class_names, adapter.input_shape, token)
        if data.display is None:  # arrays and CSV: show what the model gets
            shown = np.asarray(data.inputs)[:, 0]
            data = Dataset(data.name, data.inputs, data.labels, data.class_names,
                           shown.astype(np.float32), data.groups, data.group_names)
        return self._install(adapter, data, self.info.title, self.info.default_layer, token)


def _datasets():
    from core.session import DATASETS  # the registry lives with the session

    return DATASETS
