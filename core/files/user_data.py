"""Evaluation data of the user's own: a labelled folder of images (one sub-folder per
class), ``.npy``/``.npz`` arrays, or CSV — turned into a :class:`Dataset` the model can be
evaluated on, with every limit a hostile file could push past checked first."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.datasets import Dataset
from core.errors import InputError
from core.files.images import load_image
from core.jobs import CancelToken, report
from core.files.sniff import sniff

MAX_FILES = 5_000
MAX_ARRAY_BYTES = 512 * 1024 ** 2
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
INPUT_KEYS, LABEL_KEYS = ("inputs", "x", "images", "data"), ("labels", "y", "targets")


def _finish(name: str, inputs: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
            display: Optional[np.ndarray]) -> Dataset:
    if len(inputs) == 0:
        raise InputError(f"{name} holds no examples.")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise InputError(f"{name}: labels must lie in 0..{len(class_names) - 1}; found "
                         f"{labels.min()}..{labels.max()}.")
    for arr in (inputs, labels):
        arr.setflags(write=False)
    return Dataset(name, inputs, labels, tuple(class_names), display, labels,
                   tuple(class_names))


def _check_shape(name: str, inputs: np.ndarray, input_shape: tuple) -> np.ndarray:
    inputs = np.asarray(inputs)
    if inputs.ndim == 1 + len(input_shape) - 1 and inputs.shape[1:] == input_shape[1:] \
            and input_shape[0] == 1:
        inputs = inputs[:, None]  # (N, H, W) for a one-channel model: add the channel
    if inputs.shape[1:] != tuple(input_shape):
        flat = int(np.prod(input_shape))
        if inputs.ndim == 2 and inputs.shape[1] == flat:
            inputs = inputs.reshape(len(inputs), *input_shape)
        else:
            raise InputError(f"{name}: each example has shape {inputs.shape[1:]}, but the "
                             f"model expects {tuple(input_shape)} (or {flat} numbers).")
    if not np.issubdtype(inputs.dtype, np.number):
        raise InputError(f"{name}: the inputs are {inputs.dtype}, not numbers.")
    return np.ascontiguousarray(inputs, np.float32)


def load_folder(folder: Path, class_names: Sequence[str], input_shape: tuple,
                token: Optional[CancelToken] = None) -> Dataset:
    """A folder with one sub-folder per class, named like the model's classes."""
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir())
    if not subdirs:
        raise InputError(f"{folder.name} has no sub-folders: put the images of each class "
                         f"in a folder named after it ({', '.join(class_names[:10])}).")
    unknown = [d.name for d in subdirs if d.name not in class_names]
    if unknown:
        raise InputError(f"{folder.name}: sub-folders {', '.join(unknown[:5])} are not "
                         f"classes of this model ({', '.join(class_names[:10])}).")
    files = [(f, class_names.index(d.name)) for d in subdirs for f in sorted(d.iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() and not f.is_symlink()]
    if len(files) > MAX_FILES:
        raise InputError(f"{folder.name} holds {len(files):,} images; at most {MAX_FILES:,}.")
    inputs, labels, shown, skipped = [], [], [], []
    for i, (path, label) in enumerate(files):
        report(token, i / max(len(files), 1), f"reading {path.name}")
        try:
            converted = load_image(path)
        except InputError:
            skipped.append(path.name)
            continue
        inputs.append(converted.model_input)
        labels.append(label)
        shown.append(converted.digit)
    if not inputs:
        raise InputError(f"None of the {len(files)} images in {folder.name} could be read.")
    note = f", {len(skipped)} unreadable skipped" if skipped else ""
    inputs_arr = _check_shape(folder.name, np.stack(inputs), input_shape)
    return _finish(f"{folder.name} ({len(inputs)} images{note})", inputs_arr,
                   np.array(labels), class_names, np.stack(shown))


def _npz_members_ok(path: Path) -> None:
    """Refuse a zip bomb before numpy decompresses anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path.name} is a damaged .npz archive.") from exc
    if total > MAX_ARRAY_BYTES:
        raise InputError(f"{path.name} would unpack to {total / 1024 ** 2:,.0f} MB; "
                         f"Mechscope reads arrays up to {MAX_ARRAY_BYTES // 1024 ** 2} MB.")


def load_arrays(path: Path, class_names: Sequence[str], input_shape: tuple) -> Dataset:
    """``.npy`` (inputs; labels unknown -> all 0 is refused) or ``.npz`` with inputs and
    labels under the usual names. Never unpickles (``allow_pickle=False``)."""
    kind = sniff(path).kind
    try:
        if kind == "npz":
            _npz_members_ok(path)
            with np.load(path, allow_pickle=False) as npz:
                keys = set(npz.files)
                x_key = next((k for k in INPUT_KEYS if k in keys), None)
                y_key = next((k for k in LABEL_KEYS if k in keys), None)
                if x_key is None or y_key is None:
                    raise InputError(f"{path.name} needs an inputs array (one of "
                                     f"{', '.join(INPUT_KEYS)}) and a labels array (one of "
                                     f"{', '.join(LABEL_KEYS)}); it has {sorted(keys)}.")
                inputs, labels = npz[x_key], npz[y_key]
        elif kind == "npy":
            raise InputError(f"{path.name} holds inputs only; to measure accuracy, save "
                             "inputs and labels together with numpy.savez.")
        else:
            raise InputError(f"{path.name} is {sniff(path).description}, not arrays.")
    except ValueError as exc:  # object arrays need pickle: refused, and said so
        raise InputError(f"{path.name} could not be read safely: {exc}") from exc
    inputs = _check_shape(path.name, inputs, input_shape)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(inputs):
        raise InputError(f"{path.name}: {len(inputs)} inputs but {len(labels)} labels.")
    return _finish(path.name, inputs, labels, class_names, None)


def load_csv(path: Path, class_names: Sequence[str], input_shape: tuple) -> Dataset:
    """One example per row: the input's numbers, then its label in the last column. A
    first row of names is allowed."""
    if path.stat().st_size > MAX_ARRAY_BYTES:
        raise InputError(f"{path.name} is larger than {MAX_ARRAY_BYTES // 1024 ** 2} MB.")
    rows = []
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            try:
                rows.append([float(v) for v in row])
            except ValueError:
                if number == 1:
                    continue  # a header
                bad = next(v for v in row if not _is_number(v))
                raise InputError(f"{path.name}, line {number}: {bad!r} is not a number.") \
                    from None
    if not rows:
        raise InputError(f"{path.name} has no rows of numbers.")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(f"{path.name}: rows have different lengths ({sorted(widths)}).")
    table = np.array(rows)
    return _finish(path.name, _check_shape(path.name, table[:, :-1], input_shape),
                   table[:, -1], class_names, None)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_user_data(path: str | Path, class_names: Sequence[str], input_shape: tuple,
                   token: Optional[CancelToken] = None) -> Dataset:
    """Any supported evaluation data, chosen by what ``path`` is."""
    path = Path(path)
    if path.is_dir():
        return load_folder(path, class_names, input_shape, token)
    if not path.is_file():
        raise InputError(f"{path} is neither a file nor a folder.")
    if path.suffix.lower() == ".csv":
        return load_csv(path, class_names, input_shape)
    return load_arrays(path, class_names, input_shape)
