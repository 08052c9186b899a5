"""A model on its own architecture — a trusted pickled ``nn.Module``, a trusted
TorchScript archive, a Keras file — and the data it is evaluated on (issue #15).

The torch opener (:func:`open_trusted`) and the Keras opener
(:mod:`core.files.keras_file`) both end in :func:`open_own`, so every model of its own
architecture finds its data the same way and is trial-run before it is installed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from core.datasets import Dataset, load_digits
from core.errors import InputError, ModelLoadError
from core.files.opened import Opened
from core.files.opened import trial as _trial
from core.jobs import CancelToken, report
from core.kinds import ModelKind
from core.model import ModelAdapter
from core.zoo import ZOO

log = logging.getLogger(__name__)

#: ``make(input_shape, input_dtype)`` -> a ready adapter, in this process. It is also
#: called in the trial-run child (forked), so it must load from the file itself.
Make = Callable[[tuple, np.dtype], ModelAdapter]

#: Image sizes tried for a model whose first convolution reads channels the digits
#: lack or whose digits run failed: MNIST's and CIFAR's.
TRIED_SIDES = (28, 32)
SEQUENTIAL_NOTE = "ablations rerun only the layers after the change (nn.Sequential)"
WHOLE_NOTE = "each ablation reruns the whole forward pass (not an nn.Sequential)"


@dataclass(frozen=True)
class Layout:
    """What a module's first layers say about its input, without running it:
    ``"image"`` with the first convolution's channels, or ``"values"`` with the
    first linear layer's features."""

    kind: str
    size: int


def _shape_text(shape: tuple) -> str:
    return "×".join(str(s) for s in shape)


def _needs_data(name: str, reads: str, path: str, sha256: str,
                trusted_sha256: Optional[str]):
    from core.files.checkpoints import NeedsData

    return NeedsData(f"{name} reads {reads}; choose your own inputs and labels (a .npz "
                     "with x and y, a folder of images per class, or a CSV) to open it.",
                     path, sha256, trusted_sha256)


def open_own(make: Make, name: str, title: str, path: str, sha256: str,
             trusted_sha256: Optional[str], declared_input: Optional[tuple] = None,
             spec=None, data: Optional[str] = None,
             token: Optional[CancelToken] = None, *, layout: Optional[Layout] = None,
             note: Optional[str] = None, known: Optional[Dataset] = None) -> Opened:
    """The model that ``make`` builds, trial-run, with the data it is evaluated on:

    1. ``data`` (the user's .npz / folder / CSV, of any input shape the model takes);
    2. else the built-in dataset whose inputs it takes (``declared_input`` (C, H, W)
       when the file says, else tried: the digits as (1, 16, 16) …);
    3. else, for an image model of another size, the digits converted with ``spec``
       (raises ``NeedsInputSpec`` to ask for it);
    4. else raises ``NeedsData`` (carrying ``trusted_sha256``, so the retry with data
       does not ask for trust again).

    ``layout``: what the module's first layers say about its input, for a file that
    declares none (:func:`torch_layout`); ``note``: how it runs, for the status line
    (by default from whether the adapter can resume from a layer); ``known``: the
    built-in dataset of the architecture whose weights the file holds, tried before
    any other.
    """
    if data is not None:
        dataset = _user_data(make, name, data, declared_input, token, layout)
    elif known is not None and spec is None:
        dataset = known
        _trial(lambda: make(tuple(known.inputs.shape[1:]), np.dtype(known.inputs.dtype)),
               known, name, token)
    elif spec is not None:
        dataset = _converted_digits(spec)
        _trial(lambda: make(tuple(spec.shape), np.dtype(np.float32)), dataset, name, token)
    else:
        dataset = _built_in(make, name, path, sha256, trusted_sha256, declared_input,
                            layout, token)
    report(token, 0.8, f"opening {name}…")
    adapter = make(tuple(dataset.inputs.shape[1:]), np.dtype(dataset.inputs.dtype))
    dataset = _fit_classes(adapter, dataset, name, data, declared_input, path, sha256,
                           trusted_sha256, token)
    layers = adapter.layers()
    if not layers:
        raise ModelLoadError(f"{name} has no layers Mechscope can look inside.")
    if note is None:
        note = SEQUENTIAL_NOTE if adapter.resume_point(layers[0].name) is not None \
            else WHOLE_NOTE
    where = f"input {spec.describe()}" if spec is not None and data is None \
        else f"on {dataset.name}"
    return Opened(adapter, dataset, f"{title}, {where}", layers[0].name,
                  spec if data is None else None, note)


def _user_data(make: Make, name: str, data: str, declared_input: Optional[tuple],
               token: Optional[CancelToken], layout: Optional[Layout] = None) -> Dataset:
    from core.files.user_data import load_own_data

    # Without its classes.txt: a list of the wrong length is told against the model's
    # scores (_fit_classes), not as labels beyond the names.
    dataset = load_own_data(data, declared_input, None, None, token, classes_txt=False)
    shape = tuple(dataset.inputs.shape[1:])
    try:
        _trial(lambda: make(shape, np.dtype(dataset.inputs.dtype)), dataset, name, token)
    except ModelLoadError:
        # Only once it failed: the first layer found may not be the first one run.
        misfit = _misfit(Path(data).name, shape, layout)
        if misfit is None:
            raise
        raise InputError(misfit) from None
    return dataset


def _misfit(data_name: str, shape: tuple, layout: Optional[Layout]) -> Optional[str]:
    """Why inputs of ``shape`` do not fit the first layer ``layout`` describes, or
    ``None`` when they may."""
    if layout is None or not layout.size:
        return None
    if layout.kind == "values" and int(np.prod(shape)) != layout.size:
        return (f"{data_name} has {int(np.prod(shape))} numbers per example, but the model "
                f"reads {layout.size}; choose data of its inputs.")
    if layout.kind == "image" and len(shape) == 3 and shape[0] != layout.size:
        return (f"{data_name} has pictures of {shape[0]} channels, but the model's first "
                f"convolution reads {layout.size}; choose data of its inputs.")
    if layout.kind == "image" and len(shape) != 3:
        return (f"{data_name} has inputs of shape {_shape_text(shape)}, but the model's "
                f"first layer is a convolution over {layout.size}-channel pictures "
                "(C×H×W); choose pictures.")
    return None


def _converted_digits(spec) -> Dataset:
    digits = load_digits("eval")
    return Dataset(f"digits (eval) as {spec.describe()}", spec.apply(digits.display),
                   digits.labels, digits.class_names, digits.display, digits.groups,
                   digits.group_names)


def _built_in(make: Make, name: str, path: str, sha256: str,
              trusted_sha256: Optional[str], declared_input: Optional[tuple],
              layout: Optional[Layout], token: Optional[CancelToken]) -> Dataset:
    """The built-in image dataset the model takes, or the question that comes next."""
    from core.datasets import load_dataset
    from core.files.checkpoints import NeedsInputSpec
    from core.files.preprocess import guess

    f32 = np.dtype(np.float32)
    if declared_input is not None:
        declared = tuple(declared_input)
        for entry in ZOO.values():
            if entry.kind is ModelKind.IMAGE and tuple(entry.input_shape) == declared:
                dataset = load_dataset(entry.dataset)
                _trial(lambda: make(declared, f32), dataset, name, token)
                return dataset
        if len(declared) == 3 and declared[0] in (1, 3) and None not in declared:
            raise NeedsInputSpec(f"{name} reads {_shape_text(declared)} images: how should "
                                 "their values be scaled?", path, sha256, guess(declared, name),
                                 trusted_sha256)
        raise _needs_data(name, f"inputs of shape {_shape_text(declared)}", path, sha256,
                          trusted_sha256)
    if layout is not None and layout.kind == "values" and layout.size != 16 * 16:
        raise _needs_data(name, f"rows of {layout.size} numbers, not images", path, sha256,
                          trusted_sha256)
    digits = load_digits("eval")
    failure: Optional[ModelLoadError] = None
    if layout is None or layout.kind == "values" or layout.size == digits.inputs.shape[1]:
        try:
            _trial(lambda: make(tuple(digits.inputs.shape[1:]), f32), digits, name, token)
            return digits
        except ModelLoadError as exc:
            log.info("%s does not run on the digits: %s", name, exc)
            failure = exc
    if layout is not None and layout.kind == "image":
        for side in TRIED_SIDES:
            shape = (layout.size, side, side)
            try:
                _trial(lambda: make(shape, f32), _zeros(shape), name, token)
            except ModelLoadError as exc:
                log.info("%s does not run on %s inputs: %s", name, shape, exc)
                continue
            raise NeedsInputSpec(f"{name} reads {_shape_text(shape)} images: how should "
                                 "their values be scaled?", path, sha256, guess(shape, name),
                                 trusted_sha256)
        if failure is not None:  # an image model that runs on nothing tried: say why
            raise failure
    raise _needs_data(name, "inputs of a shape Mechscope cannot guess (it does not run on "
                      "the 1×16×16 digits)", path, sha256, trusted_sha256)


def _zeros(shape: tuple) -> Dataset:
    inputs = np.zeros((2, *shape), np.float32)
    labels = np.zeros(2, np.int64)
    return Dataset("zeros", inputs, labels, ("0", "1"), None, labels, ("0", "1"))


def _fit_classes(adapter: ModelAdapter, dataset: Dataset, name: str, data: Optional[str],
                 declared_input: Optional[tuple], path: str, sha256: str,
                 trusted_sha256: Optional[str], token: Optional[CancelToken]) -> Dataset:
    """``dataset`` with one class name per score the model gives (its own data are
    read again for that count); the model has run in the trial child already."""
    out = np.asarray(adapter.run(np.asarray(dataset.inputs[:2])).outputs)
    scores, classes = int(out.shape[-1]), len(dataset.class_names)
    if not dataset.kind.classifies:
        return dataset
    if data is not None:  # read again with its classes.txt, checked against the scores
        from core.files.user_data import load_own_data

        return load_own_data(data, declared_input, None, scores, token)
    if scores == classes:
        return dataset
    if scores < classes:
        raise _needs_data(name, f"images but gives {scores} scores, not one per class of "
                          f"the {classes} in {dataset.name}", path, sha256, trusted_sha256)
    names = tuple(dataset.class_names) + tuple(str(i) for i in range(classes, scores))
    return replace(dataset, class_names=names)


# --- trusted torch files --------------------------------------------------------------

def torch_layout(module) -> Optional[Layout]:
    """The input the first convolution or linear layer of ``module`` (eager or
    TorchScript) reads, from its settings alone; ``None`` when neither comes first."""
    for _, sub in module.named_modules():
        kind = getattr(sub, "original_name", type(sub).__name__)
        if kind in ("Conv2d", "LazyConv2d") and isinstance(getattr(sub, "in_channels", None),
                                                           int):
            return Layout("image", sub.in_channels) if sub.in_channels else None
        if kind == "Linear" and isinstance(getattr(sub, "in_features", None), int):
            return Layout("values", sub.in_features)
    return None


def open_trusted(path: str, result, spec=None, data: Optional[str] = None,
                 token: Optional[CancelToken] = None) -> Opened:
    """A pickled ``nn.Module`` or TorchScript archive the user trusted (``result``:
    its :class:`core.files.probe.ProbeResult`), on its own architecture."""
    from core.files.checkpoints import load_trusted

    name = Path(path).name
    kind, unsafe = result.sniffed.kind, tuple(result.unsafe_globals)
    script = kind == "torchscript"
    report(token, 0.3, f"loading {name} (trusted)…")
    module = load_trusted(path, kind, unsafe)
    layout, known = torch_layout(module), _zoo_dataset(module, name)
    del module  # the adapter loads its own, marked before its first run

    def make(input_shape: tuple, dtype: np.dtype) -> ModelAdapter:
        from core.adapters.torch_adapter import TorchAdapter

        module = load_trusted(path, kind, unsafe)
        if script:
            from core.adapters.script_sites import ScriptModel

            module = ScriptModel(module, name)
        return TorchAdapter(module, name, input_shape, dtype)

    what = "TorchScript" if script else "its own architecture"
    note = "each ablation reruns the whole forward pass (TorchScript)" if script else None
    return open_own(make, name, f"{name} ({what})", path, result.sha256, result.sha256,
                    None, spec, data, token, layout=layout, note=note, known=known)


def _zoo_dataset(module, name: str) -> Optional[Dataset]:
    """The dataset of the built-in architecture whose weights ``module`` holds (a
    trusted copy of the induction transformer reads its letters), else ``None``."""
    from core.datasets import load_dataset
    from core.files.checkpoints import match_zoo

    state = {k: v.detach() for k, v in module.state_dict().items()}
    try:
        entry = match_zoo(state, name)
    except ModelLoadError:
        return None
    return load_dataset(entry.dataset)
