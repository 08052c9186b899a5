"""A :class:`Dataset` from the user's own arrays, of any input shape: images
(N, C, H, W), token ids (N, T) or rows of numbers (N, F) — what ``mechscope.show``
gets from a script and what a ``.npz`` of the user's holds (issue #15).

Which kind of data it is follows from the arrays alone, the same way for both routes:
integer (N, T) arrays are token ids, float (N, C, H, W) arrays with 1–4 channels are
images, anything else is rows of numbers (:attr:`ModelKind.VALUES`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from core.datasets import Dataset
from core.errors import InputError
from core.kinds import ModelKind

MAX_IMAGE_CHANNELS = 4


def data_kind(inputs: np.ndarray) -> ModelKind:
    """What ``inputs`` (N, ...) are, from their dtype and shape."""
    if inputs.ndim == 2 and inputs.dtype.kind in "iu":
        return ModelKind.TOKENS
    if inputs.ndim == 4 and 1 <= inputs.shape[1] <= MAX_IMAGE_CHANNELS:
        return ModelKind.IMAGE
    return ModelKind.VALUES


def channels_first(inputs: np.ndarray) -> np.ndarray:
    """``inputs`` with (N, H, W, C) pictures (C of 1–4, H and W over 4, as Keras users
    and image libraries save them) moved to (N, C, H, W); anything else as it is.

    Only for data whose model input is unknown: an array that could be either layout
    (N, 3, 3, 3) is left alone, and a known input shape always decides instead.
    """
    shape = inputs.shape
    if inputs.ndim == 4 and 1 <= shape[3] <= MAX_IMAGE_CHANNELS and min(shape[1:3]) > 4 \
            and inputs.dtype.kind in "fiub":
        return np.moveaxis(inputs, -1, 1)
    return inputs


def display_of(inputs: np.ndarray) -> np.ndarray:
    """(N, H, W) 0..1 pictures of (N, C, H, W) images: the channel mean, scaled by the
    1st and 99th percentiles over the whole set (one scale, so brightness compares)."""
    gray = np.asarray(inputs, np.float32).mean(axis=1)
    lo, hi = np.percentile(gray, [1, 99]) if gray.size else (0.0, 1.0)
    out = np.clip((gray - lo) / max(float(hi - lo), 1e-12), 0, 1).astype(np.float32)
    out.setflags(write=False)
    return out


def _labels(name: str, labels: np.ndarray, wanted: tuple[int, ...]) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) \
            and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iub":
        raise InputError(f"{name}: labels must be whole numbers (class indices), not "
                         f"{labels.dtype}.")
    if labels.shape != wanted:
        raise InputError(f"{name}: labels have shape {labels.shape}; {wanted} are needed "
                         "(one class per example, or one next token per position for "
                         "token ids; -1 where a position is not scored).")
    return labels.astype(np.int64)


def dataset_from_arrays(name: str, inputs, labels, class_names: Optional[Sequence[str]] = None,
                        n_outputs: Optional[int] = None) -> Dataset:
    """The user's ``inputs`` (N, ...) and ``labels`` as a read-only :class:`Dataset`.

    ``class_names``: one per output class; else ``"0"``, ``"1"``, … for ``n_outputs``
    classes (the model's output size), else up to the largest label.
    Raises :class:`InputError` with a sentence for arrays that cannot be used.
    """
    inputs = np.asarray(inputs)
    if inputs.ndim < 2 or len(inputs) == 0:
        raise InputError(f"{name}: inputs must be an array of examples (N, ...), N ≥ 1; "
                         f"got shape {inputs.shape}.")
    if inputs.dtype.kind not in "fiub":
        raise InputError(f"{name}: the inputs are {inputs.dtype}, not numbers.")
    kind = data_kind(inputs)
    if kind is ModelKind.TOKENS:
        inputs = np.ascontiguousarray(inputs, np.int64)
        if inputs.min() < 0:
            raise InputError(f"{name}: token ids must be 0 or more.")
        labels = _labels(name, labels, inputs.shape)
    else:
        with np.errstate(over="ignore"):
            inputs = np.ascontiguousarray(inputs, np.float32)
        if not np.isfinite(inputs).all():
            raise InputError(f"{name}: some inputs are NaN or infinite (or too large for "
                             "32-bit floats); fix or drop those examples.")
        labels = _labels(name, np.asarray(labels).reshape(-1) if np.ndim(labels) == 2 and
                         np.shape(labels)[1] == 1 else labels, (len(inputs),))
    scored = labels[labels >= 0]
    if class_names is None:
        count = n_outputs or (int(scored.max()) + 1 if scored.size else 1)
        class_names = tuple(str(i) for i in range(count))
    class_names = tuple(str(c) for c in class_names)
    if scored.size and scored.max() >= len(class_names):
        raise InputError(f"{name}: labels go up to {scored.max()}, but there are "
                         f"{len(class_names)} classes (0–{len(class_names) - 1}).")
    display = display_of(inputs) if kind is ModelKind.IMAGE else None
    groups = labels.copy()
    for arr in (inputs, labels, groups):
        arr.setflags(write=False)
    if kind is ModelKind.TOKENS:
        texts = tuple(" ".join(str(t) for t in row[:32]) for row in inputs[:200])
        return Dataset(name, inputs, labels, class_names, None, groups, class_names,
                       "next token", kind, None, texts)
    return Dataset(name, inputs, labels, class_names, display, groups, class_names,
                   "class", kind)
