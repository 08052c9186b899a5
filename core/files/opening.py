"""Turning a user's file into something the session can install: a model (with the
dataset it is evaluated on) or a dataset for the open model.

These functions only build and check; they never touch the session, so a failure at
any step leaves the model and data that were open before exactly as they were. A model
file is installed only after a trial run on two real examples in a process that may
die (:func:`core.adapters.trial.trial_run`).
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

from core.datasets import Dataset, load_dataset, load_digits
from core.errors import InputError, ModelLoadError
from core.files.images import ConvertedImage
from core.files.opened import Opened
from core.files.opened import trial as _trial
from core.jobs import CancelToken, report
from core.kinds import ModelKind
from core.model import ModelAdapter
from core.zoo import ZOO

log = logging.getLogger(__name__)
DATA_SUFFIXES = (".npz", ".npy", ".csv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: Kinds of content that are models (or claim to be): the extension never overrides.
MODEL_KINDS = ("torch-zip", "torchscript", "pickle", "safetensors", "onnx", "keras",
               "keras-h5", "hdf5")


def refuse_special(path: str | Path, folders: bool = False) -> Path:
    """``path`` if it is a regular file (or, with ``folders``, a folder); else a clear
    :class:`InputError` — checked with ``os.stat`` before anything opens it, because
    opening a named pipe blocks until someone writes to it."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{path.name} does not exist; it may have been moved, renamed or "
                         "deleted — choose it again.") from None
    except OSError as exc:
        log.info("stat %s: %s", path, exc)
        raise InputError(f"{path.name} cannot be read: you may not have permission "
                         "to open it.") from None
    if stat.S_ISREG(mode) or (folders and stat.S_ISDIR(mode)):
        return path
    what = ("a folder" if stat.S_ISDIR(mode) else "a named pipe" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device")
    wanted = "regular files and folders" if folders else "regular files"
    raise InputError(f"{path.name} is {what}, not a file; Mechscope opens {wanted} only.")


def classify(path: str | Path) -> str:
    """"model", "data" or "image": what opening ``path`` means, by content."""
    from core.files.sniff import sniff

    path = refuse_special(path, folders=True)
    if path.is_dir():
        return "data"
    kind, suffix = sniff(path).kind, path.suffix.lower()
    if kind == "image":
        return "image"
    if kind in ("npz", "npy"):
        return "data"
    # Content that is no model: the name says what the user meant to open, so the
    # message can be about that (a damaged image, not "not a model").
    if kind not in MODEL_KINDS and suffix in IMAGE_SUFFIXES:
        return "image"
    if kind not in MODEL_KINDS and suffix in DATA_SUFFIXES:
        return "data"
    return "model"


def _torch_adapter(entry, state: dict, label: str) -> ModelAdapter:
    from core.adapters.torch_adapter import TorchAdapter
    from core.files.checkpoints import as_torch_state

    model = entry.builder()
    model.load_state_dict(as_torch_state(state), strict=True)
    dtype = "int64" if entry.kind.reads_text else "float32"
    return TorchAdapter(model, label, entry.input_shape, dtype)


def open_model_file(path: str, trusted_sha256: Optional[str] = None, spec=None,
                    token: Optional[CancelToken] = None,
                    data: Optional[str] = None) -> Opened:
    """A user's model file (state_dict, safetensors, trusted module or TorchScript,
    ONNX, Keras) as an :class:`Opened` model, trial-run on its dataset.

    Raises ``NeedsTrust``, ``NeedsInputSpec`` or :class:`ModelLoadError`.
    """
    from core.files.checkpoints import open_checkpoint
    from core.files.keras_config import KERAS_KINDS
    from core.files.keras_file import open_keras
    from core.files.sniff import sniff

    refuse_special(path)
    if sniff(path).kind in KERAS_KINDS:
        return open_keras(path, trusted_sha256, spec, token, data)
    name = Path(path).name
    report(token, 0.1, f"reading {name} in a sandbox process…")
    entry, state, result = open_checkpoint(path, trusted_sha256)
    if entry is None and result.needs_trust:  # code the user trusted: its own architecture
        from core.files.own_model import open_trusted

        return open_trusted(path, result, spec, data, token)
    if entry is None:
        return _open_onnx(path, result.sha256, spec, token, data)
    label = f"{entry.name} ← {name}"
    dataset = load_dataset(entry.dataset)
    if data is not None:  # the user's data, in the input this architecture reads
        dataset = user_dataset(data, _torch_adapter(entry, state, label), dataset, token)
    _trial(lambda: _torch_adapter(entry, state, label), dataset, name, token)
    where = f" on {Path(data).name}" if data is not None else ""
    return Opened(_torch_adapter(entry, state, label), dataset,
                  f"{entry.name} with the weights of {name}{where}", entry.default_layer)


def _open_onnx(path: str, sha256: str, spec, token: Optional[CancelToken],
               data: Optional[str] = None) -> Opened:
    """An ONNX model on ``data`` (the user's inputs and labels) when given, else on the
    dataset whose inputs it takes — or, given an input spec (asked once from the user),
    on the digits converted to that input."""
    from core.adapters.onnx_adapter import OnnxAdapter
    from core.files.checkpoints import NeedsInputSpec
    from core.files.preprocess import guess

    name = Path(path).name
    try:
        adapter = OnnxAdapter(path, name)
    except (ValueError, KeyError) as exc:
        log.info("ONNX %s refused: %s", name, exc)
        raise ModelLoadError(f"{name} cannot be opened: {exc}") from exc
    if data is not None:  # checked against its input and its number of scores
        from core.files.own_model import open_own

        return open_own(lambda *_: OnnxAdapter(path, name), name, f"{name} (ONNX)", path,
                        sha256, None, tuple(adapter.input_shape), data=data, token=token)
    for entry in ZOO.values():
        if entry.kind is ModelKind.IMAGE and entry.input_shape == adapter.input_shape \
                and spec is None:
            dataset = load_dataset(entry.dataset)
            _trial(lambda: OnnxAdapter(path, name), dataset, name, token)
            return Opened(adapter, dataset, f"{name} (ONNX) on the {entry.dataset} data",
                          adapter.layers()[0].name)
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
    _trial(lambda: OnnxAdapter(path, name), data, name, token)
    return Opened(adapter, data, f"{name} (ONNX), input {spec.describe()}",
                  adapter.layers()[0].name, spec)


def user_dataset(path: str, adapter: ModelAdapter, current: Dataset,
                 token: Optional[CancelToken] = None) -> Dataset:
    """The user's labelled data (a folder with one sub-folder per class, .npz, .npy or
    .csv) for ``adapter``, of whatever input it reads, with the class names of
    ``current`` — unless a ``classes.txt`` beside the data names them (as many as the
    model has outputs)."""
    from core.files.class_names import classes_file
    from core.files.user_data import load_own_data, load_user_data

    if current.kind is ModelKind.EMBEDDING:
        raise InputError("The sentence encoder puts out embeddings, not classes: there "
                         "are no labels of your own data to score it on.")
    refuse_special(path, folders=True)
    names = current.class_names
    if current.kind is ModelKind.IMAGE and tuple(adapter.input_shape) == (1, 16, 16) \
            and classes_file(Path(path).absolute()) is None:
        # The digits' input: photos of digits are found, cropped and centred like the
        # dataset's, which a plain resize would not do.
        data = load_user_data(path, names, adapter.input_shape, token)
    else:
        data = load_own_data(path, adapter.input_shape, names, len(names), token)
    if data.kind.classifies and current.kind.classifies:
        data = replace(data, kind=current.kind)
    elif data.kind is not current.kind:
        reads = "token ids" if current.kind is ModelKind.TOKENS else "numbers"
        raise InputError(f"{Path(path).name} does not hold what {adapter.name} reads "
                         f"({reads}, shape {tuple(adapter.input_shape)}); for token ids "
                         "save integer inputs (N, T) with next-token labels (N, T).")
    if data.kind is ModelKind.TOKENS:  # the model's padding and words, not bare ids
        vocab, pad = current.class_names, current.pad_id
        texts = tuple(" ".join(vocab[t] for t in row[:64] if t != pad and t < len(vocab))
                      for row in np.asarray(data.inputs[:200]))
        data = replace(data, pad_id=pad, texts=texts)
    if data.display is None and data.kind is ModelKind.IMAGE:  # arrays and CSV
        from core.files.array_data import display_of

        data = replace(data, display=display_of(data.inputs))
    return data


def respecified(converted: ConvertedImage, spec, adapter: ModelAdapter) -> ConvertedImage:
    """For a model with its own input spec, the 8x8 digit converted to that input."""
    if spec is None or tuple(spec.shape) != tuple(adapter.input_shape):
        return converted
    model_input = spec.apply(converted.digit[None])[0]
    model_input.setflags(write=False)
    return replace(converted, model_input=model_input,
                   steps=converted.steps[:-1] + (f"converted to {spec.describe()}",))
