"""Evaluation data of the user's own: a labelled folder of images (one sub-folder per
class), ``.npy``/``.npz`` arrays, or CSV — turned into a :class:`Dataset` the model can be
evaluated on, with every limit a hostile file could push past checked first."""

from __future__ import annotations

import itertools
import stat
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from core.datasets import Dataset
from core.errors import InputError
from core.files.array_data import channels_first, dataset_from_arrays
from core.files.arrays import MAX_ARRAY_BYTES, check_npy, npz_names, read_npz  # noqa: F401
from core.files.class_names import CLASSES_FILE, check_count, classes_file, read_classes
from core.files.guard import check_path
from core.files.images import load_image, load_picture
from core.files.sniff import sniff
from core.files.tables import read_csv
from core.jobs import CancelToken, report

MAX_FILES = 5_000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
INPUT_KEYS, LABEL_KEYS = ("inputs", "x", "images", "data"), ("labels", "y", "targets")


def _finish(name: str, inputs: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
            display: Optional[np.ndarray]) -> Dataset:
    if len(inputs) == 0:
        raise InputError(f"{name} holds no examples.")
    labels = _whole_labels(name, labels, len(class_names))
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise InputError(f"{name}: labels must lie in 0..{len(class_names) - 1}; found "
                         f"{labels.min()}..{labels.max()}.")
    for arr in (inputs, labels):
        arr.setflags(write=False)
    return Dataset(name, inputs, labels, tuple(class_names), display, labels,
                   tuple(class_names))


def _whole_labels(name: str, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels as int64 — refusing fractions (3.7 is no class) rather than truncating."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biuf":
        raise InputError(f"{name}: labels must be whole numbers (class indices 0.."
                         f"{n_classes - 1}), not text or other values.")
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if bad.any():
            raise InputError(f"{name}: labels must be whole numbers (class indices 0.."
                             f"{n_classes - 1}); found {labels[bad][0]:g}.")
        outside = (labels < 0) | (labels >= n_classes)
        if outside.any():  # before int64, which a label like 1e300 would overflow
            raise InputError(f"{name}: labels must lie in 0..{n_classes - 1}; found "
                             f"{labels[outside][0]:g}.")
    return labels.astype(np.int64)


def _check_shape(name: str, inputs: np.ndarray, input_shape: tuple) -> np.ndarray:
    inputs = _channels_first(np.asarray(inputs), tuple(input_shape))  # a Keras user's
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
    if not (np.issubdtype(inputs.dtype, np.number) or inputs.dtype == bool) or \
            np.issubdtype(inputs.dtype, np.complexfloating):
        raise InputError(f"{name}: the inputs are {inputs.dtype}, not numbers.")
    with np.errstate(over="ignore"):  # too large for float32 becomes inf, refused next
        inputs = np.ascontiguousarray(inputs, np.float32)
    if not np.isfinite(inputs).all():
        raise InputError(f"{name}: some inputs are not finite numbers (NaN or infinity, or "
                         "too large for 32-bit floats); fix or drop those examples.")
    return inputs


def _class_files(folder: Path, subdirs, names: Sequence[str]) -> list:
    """(image file, class index) in each class sub-folder; ``is_file()`` asks os.stat, so
    named pipes and devices among the images are passed over without being opened."""
    files = [(f, list(names).index(d.name)) for d in subdirs
             for f in sorted(itertools.islice(d.iterdir(), MAX_FILES + 1))
             if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() and not f.is_symlink()]
    if len(files) > MAX_FILES:
        raise InputError(f"{folder.name} holds more than {MAX_FILES:,} images; Mechscope "
                         f"reads at most {MAX_FILES:,}: use a smaller selection.")
    if not files:
        raise InputError(f"{folder.name} has no image files in its class folders "
                         f"({', '.join(d.name for d in subdirs[:10])}); put PNG or JPEG "
                         "pictures of each class in them.")
    return files


def load_folder(folder: Path, class_names: Sequence[str], input_shape: tuple,
                token: Optional[CancelToken] = None) -> Dataset:
    """A folder with one sub-folder per class, named like the model's classes."""
    folder = Path(folder)
    check_path(folder, folders=True, what="data file", error=InputError)
    if not folder.is_dir():
        raise InputError(f"{folder.name} is a file, not a folder of images; choose the "
                         "folder that holds one sub-folder per class.")
    subdirs = sorted(p for p in itertools.islice(folder.iterdir(), MAX_FILES)
                     if p.is_dir() and not p.is_symlink())
    if not subdirs:
        raise InputError(f"{folder.name} has no sub-folders: put the images of each class "
                         f"in a folder named after it ({', '.join(class_names[:10])}).")
    unknown = [d.name for d in subdirs if d.name not in class_names]
    if unknown:
        raise InputError(f"{folder.name}: sub-folders {', '.join(unknown[:5])} are not "
                         f"classes of this model ({', '.join(class_names[:10])}).")
    files = _class_files(folder, subdirs, class_names)
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


def load_arrays(path: Path, class_names: Sequence[str], input_shape: tuple,
                token: Optional[CancelToken] = None) -> Dataset:
    """``.npy`` (inputs; labels unknown -> all 0 is refused) or ``.npz`` with inputs and
    labels under the usual names. Never unpickles; headers are checked before data."""
    x, y = _npz_pair(path, token)
    inputs = _check_shape(path.name, x, input_shape)
    labels = y.reshape(-1)
    if len(labels) != len(inputs):
        raise InputError(f"{path.name}: {len(inputs)} inputs but {len(labels)} labels.")
    return _finish(path.name, inputs, labels, class_names, None)


def load_csv(path: Path, class_names: Sequence[str], input_shape: tuple,
             token: Optional[CancelToken] = None) -> Dataset:
    """One example per row: the input's numbers, then its label in the last column. A
    first row of names is allowed."""
    inputs, labels = read_csv(path, int(np.prod(input_shape)), token)
    return _finish(path.name, _check_shape(path.name, inputs, input_shape), labels,
                   class_names, None)


def load_user_data(path: str | Path, class_names: Sequence[str], input_shape: tuple,
                   token: Optional[CancelToken] = None) -> Dataset:
    """Any supported evaluation data, chosen by what ``path`` is."""
    path = Path(path)
    info = check_path(path, folders=True, what="data file", error=InputError)
    if stat.S_ISDIR(info.st_mode):
        return load_folder(path, class_names, input_shape, token)
    if path.suffix.lower() == ".csv":
        return load_csv(path, class_names, input_shape, token)
    return load_arrays(path, class_names, input_shape, token)


# --- data of any input shape (issue #15) -------------------------------------------
#: A CSV for a model whose input size is not known may be this wide.
MAX_CSV_COLUMNS = 100_000


def load_own_data(path: str | Path, input_shape: Optional[tuple] = None,
                  class_names: Optional[Sequence[str]] = None,
                  n_outputs: Optional[int] = None,
                  token: Optional[CancelToken] = None, *,
                  classes_txt: bool = True) -> Dataset:
    """The user's inputs and labels for a model of any input, as a :class:`Dataset`.

    ``path`` is a ``.npz`` (inputs and labels under the usual names: float images
    (N, C, H, W), rows (N, F), or int token ids (N, T) with (N, T) next-token labels),
    a ``.csv`` (one row per example, the label last) or a folder with one sub-folder of
    images per class (for a model that reads images). ``input_shape`` (the model's
    input, without N) is checked against the data, which is reshaped to it where it is
    only laid out differently (flat rows, no channel axis, channels last).

    Class names: a ``classes.txt`` beside the file (or inside the folder), else the
    folder names, else ``class_names``, else ``"0"``… for ``n_outputs`` classes.
    ``classes_txt=False`` leaves the ``classes.txt`` out, for a first read before the
    model's number of scores is known (its count is then checked against that).

    Raises :class:`InputError` with a sentence for data that cannot be used.
    """
    path = Path(path)
    info = check_path(path, folders=True, what="data file", error=InputError)
    listed_at = classes_file(path.absolute()) if classes_txt else None
    listed = read_classes(listed_at) if listed_at is not None else None
    if listed is not None:
        check_count(listed, n_outputs, f"{listed_at.parent.name}/{listed_at.name}")
    if stat.S_ISDIR(info.st_mode):
        return _own_folder(path, input_shape, listed, class_names, n_outputs, token)
    names = listed if listed is not None else (
        tuple(class_names) if class_names is not None else None)
    if path.suffix.lower() == ".csv":
        width = int(np.prod(input_shape)) if input_shape else MAX_CSV_COLUMNS
        inputs, labels = read_csv(path, width, token)
        return _own_arrays(path.name, inputs, labels, input_shape, names, n_outputs)
    inputs, labels = _npz_pair(path, token)
    return _own_arrays(path.name, inputs, labels, input_shape, names, n_outputs)


def _npz_pair(path: Path, token: Optional[CancelToken]) -> tuple[np.ndarray, np.ndarray]:
    kind = sniff(path).kind
    if kind == "npy":
        check_npy(path)
        raise InputError(f"{path.name} holds inputs only; to measure accuracy, save "
                         "inputs and labels together with numpy.savez.")
    if kind != "npz":
        what = ("a ZIP archive with no NumPy arrays in it" if kind == "zip"
                else f"{sniff(path).description}, not NumPy arrays")
        raise InputError(f"{path.name} is {what}; save inputs and labels with "
                         "numpy.savez(path, x=inputs, y=labels).")
    arrays = read_npz(path, (INPUT_KEYS, LABEL_KEYS), token)
    x_key = next((k for k in INPUT_KEYS if k in arrays), None)
    y_key = next((k for k in LABEL_KEYS if k in arrays), None)
    if x_key is None or y_key is None:
        raise InputError(f"{path.name} needs an inputs array (one of "
                         f"{', '.join(INPUT_KEYS)}) and a labels array (one of "
                         f"{', '.join(LABEL_KEYS)}); it has {npz_names(path)}.")
    return arrays[x_key], arrays[y_key]


def _own_arrays(name: str, inputs: np.ndarray, labels: np.ndarray,
                input_shape: Optional[tuple], names: Optional[tuple],
                n_outputs: Optional[int]) -> Dataset:
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    if inputs.ndim < 2 or len(inputs) == 0:
        raise InputError(f"{name}: the inputs must be an array of examples (N, ...) with "
                         f"at least one example; they have shape {inputs.shape}.")
    tokens = inputs.dtype.kind in "iu" and inputs.ndim == 2 and labels.shape == inputs.shape
    if tokens:
        if input_shape is not None and (len(input_shape) != 1
                                        or inputs.shape[1] > input_shape[0]):
            raise InputError(f"{name} holds token ids of {inputs.shape[1]} positions, but "
                             f"the model reads inputs of shape {tuple(input_shape)}.")
        return dataset_from_arrays(name, inputs, labels, names, n_outputs)
    if input_shape is not None:
        inputs = _check_shape(name, inputs, tuple(input_shape))
    elif not (np.issubdtype(inputs.dtype, np.number) or inputs.dtype == bool) or \
            np.issubdtype(inputs.dtype, np.complexfloating):
        raise InputError(f"{name}: the inputs are {inputs.dtype}, not numbers.")
    else:  # integer rows are numbers too, not token ids, when there is one label each
        inputs = channels_first(inputs).astype(np.float32)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != len(inputs):
        raise InputError(f"{name}: {len(inputs)} inputs but labels of shape "
                         f"{labels.shape}; one class index per example is needed.")
    count = len(names) if names is not None else n_outputs
    labels = _whole_labels(name, labels, count or MAX_CSV_COLUMNS)
    if labels.min() < 0:
        raise InputError(f"{name}: labels are class indices 0 or more; found "
                         f"{labels.min()}.")
    return dataset_from_arrays(name, inputs, labels, names, n_outputs)


def _channels_first(inputs: np.ndarray, input_shape: tuple) -> np.ndarray:
    """(N, H, W, C) pictures for a (C, H, W) model, as a Keras user saves them."""
    if len(input_shape) == 3 and inputs.ndim == 4 and input_shape[0] <= 4 and \
            inputs.shape[1:] == (*input_shape[1:], input_shape[0]) and \
            inputs.shape[1:] != tuple(input_shape):
        return np.moveaxis(inputs, -1, 1)
    return inputs


def _own_folder(folder: Path, input_shape: Optional[tuple], listed: Optional[tuple],
                class_names: Optional[Sequence[str]], n_outputs: Optional[int],
                token: Optional[CancelToken]) -> Dataset:
    if input_shape is None or len(input_shape) != 3 or input_shape[0] not in (1, 3):
        reads = "inputs of unknown shape" if input_shape is None else \
            f"inputs of shape {tuple(input_shape)}"
        raise InputError(f"{folder.name} is a folder of images, but the model reads "
                         f"{reads}, not pictures of 1 or 3 channels; choose a .npz or "
                         ".csv of its inputs and labels.")
    subdirs = sorted(p for p in itertools.islice(folder.iterdir(), MAX_FILES)
                     if p.is_dir() and not p.is_symlink())
    if not subdirs:
        raise InputError(f"{folder.name} has no sub-folders: put the images of each class "
                         "in a folder named after it.")
    found = tuple(d.name for d in subdirs)
    if listed is not None:
        names, source = listed, f"its {CLASSES_FILE}"
    elif class_names is not None and set(found) <= set(class_names):
        names, source = tuple(class_names), "the model's classes"
    else:
        names, source = found, ""
        if n_outputs is not None and len(names) != n_outputs:
            raise InputError(f"{folder.name} has {len(names)} class folders "
                             f"({', '.join(names[:10])}), but the model has {n_outputs} "
                             f"outputs; add a {CLASSES_FILE} to the folder naming all "
                             f"{n_outputs} classes, one per line, in the order of the "
                             "outputs.")
    unknown = [d for d in found if d not in names]
    if unknown:
        raise InputError(f"{folder.name}: sub-folders {', '.join(unknown[:5])} are not "
                         f"classes named in {source} ({', '.join(names[:10])}).")
    files = _class_files(folder, subdirs, names)
    channels, height, width = (int(v) for v in input_shape)
    inputs, labels, skipped = [], [], 0
    for i, (path, label) in enumerate(files):
        report(token, i / len(files), f"reading {path.name}")
        try:
            inputs.append(load_picture(path, channels, height, width))
        except InputError:
            skipped += 1
            continue
        labels.append(label)
    if not inputs:
        raise InputError(f"None of the {len(files)} images in {folder.name} could be read.")
    note = f", {skipped} unreadable skipped" if skipped else ""
    return dataset_from_arrays(f"{folder.name} ({len(inputs)} images{note})",
                               np.stack(inputs), np.array(labels, np.int64), names,
                               n_outputs)
