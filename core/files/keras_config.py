"""A Keras file's description, read as data: no keras import, for it runs in the
probe's child process (:mod:`core.files.probe_child`).

A Keras file is a JSON description of the model plus its weights. Deserialising the
JSON can run code: a ``Lambda`` layer stores Python bytecode, and an object whose
``module`` is not Keras's own names a class of the user's that Keras builds (a custom
layer). :func:`code_in_config` lists such entries from the JSON alone, for the trust
dialog.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from core.files.limits import Refusal

#: Sniffed kinds opened by Keras: a .keras zip, an HDF5 file that names a Keras model
#: in its first bytes, and any other HDF5 file (the probe says what it lacks).
KERAS_KINDS = ("keras", "keras-h5", "hdf5")
CONFIG = "config.json"
WEIGHTS = "model.weights"
MAX_CONFIG_BYTES = 64 * 1024 ** 2
#: Layer classes whose configuration is code: Keras 3's Lambda, and the op wrappers
#: of Keras 2 files, which call a function named in the file.
LAMBDAS = ("Lambda", "TFOpLambda", "SlicingOpLambda", "__lambda__")


def read_config(path: str | Path, kind: str) -> dict:
    """The model's JSON configuration, read as data (no keras import).

    Raises
    ------
    Refusal
        Not a Keras model (a zip without ``config.json``, weights saved alone), or a
        configuration that is not JSON.
    """
    if kind == "keras":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if CONFIG not in names:
                raise Refusal("is a ZIP archive without the config.json of a Keras model; "
                              "save the model with model.save(\"name.keras\")")
            if not any(n.startswith(WEIGHTS) for n in names):
                raise Refusal("is a Keras model without its weights (no model.weights.h5 "
                              "in it); save it again with model.save(\"name.keras\")")
            info = archive.getinfo(CONFIG)
            if info.file_size > MAX_CONFIG_BYTES:
                raise Refusal("has a config.json too large for a model description; it "
                              "is damaged or hostile", f"{info.file_size} bytes")
            raw: Any = archive.read(info)
    else:
        try:
            import h5py
        except ImportError:
            raise Refusal("is an HDF5 file; reading it needs h5py, which comes with the "
                          "Keras extra: pip install \".[keras]\"") from None
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
        if raw is None:
            raise Refusal("is an HDF5 file without a Keras model in it (only weights, "
                          "saved with save_weights?); save the whole model with "
                          "model.save(\"name.keras\")")
        if isinstance(raw, np.ndarray):
            raw = raw.item()
    if isinstance(raw, (bytes, np.bytes_)):
        raw = bytes(raw).decode("utf-8")
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise Refusal("has a model description that is not valid JSON; it is damaged — "
                      "re-save or re-download it", str(exc)) from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise Refusal("has a model description Mechscope does not understand; re-save it "
                      "with Keras 3: model.save(\"name.keras\")")
    return config


def _keras_module(module: str) -> bool:
    return module == "keras" or module.startswith("keras.")


def code_in_config(config: Any) -> tuple[str, ...]:
    """What deserialising ``config`` would run: each Lambda layer, and each object
    whose module is not Keras's own (a custom layer, loss or function), in words."""
    return _scan(config)[0]


def custom_modules(config: Any) -> tuple[str, ...]:
    """The modules that the custom objects of ``config`` come from: imported (so that
    their ``register_keras_serializable`` runs) only when the user trusted the file."""
    return _scan(config)[1]


def _scan(config: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    found: list[str] = []
    modules: list[str] = []

    def visit(node: Any, layer: str, key: str) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item, layer, key)
            return
        if not isinstance(node, dict):
            return
        cls, module, inner = node.get("class_name"), node.get("module"), node.get("config")
        name = inner.get("name") if isinstance(inner, dict) else None
        if isinstance(name, str) and (key == "layers" or "inbound_nodes" in node):
            layer = name  # a layer: what it holds is named after it
            here = f" (layer {name!r})"
        else:
            here = f" (in layer {layer!r})" if layer else ""
        if isinstance(cls, str) and cls in LAMBDAS:
            # One entry per Lambda: whatever its function is, it runs.
            found.append(f"a Python function stored in the file{here}"
                         if cls == "__lambda__" else f"{cls}{here}")
            return
        # "builtins" is how Keras names its own functions (and, without a module, a
        # function of the user's script): it looks those up among its own only.
        if isinstance(module, str) and not _keras_module(module) and module != "builtins":
            found.append(f"{module}.{cls}{here}")
            modules.append(module)
        for sub, value in node.items():
            visit(value, layer, sub)

    visit(config, "", "")
    return tuple(dict.fromkeys(found)), tuple(dict.fromkeys(modules))


def named_functions(config: Any) -> tuple[str, ...]:
    """The functions Lambda layers call by name alone (``Lambda(f)`` of a ``def f``):
    the file stores no code for them, and Keras finds only its own functions that way
    (a ``relu``), so any other name cannot be loaded, trusted or not."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        if not isinstance(node, dict):
            return
        inner = node.get("config")
        if node.get("class_name") in LAMBDAS and isinstance(inner, dict):
            function = inner.get("function")
            if isinstance(function, dict) and function.get("class_name") == "function" \
                    and function.get("module") == "builtins" \
                    and isinstance(function.get("config"), str):
                found.append(function["config"])
        for value in node.values():
            visit(value)

    visit(config)
    return tuple(dict.fromkeys(found))


def _channels_last(layers: list) -> bool:
    formats = {(lay.get("config") or {}).get("data_format") for lay in layers
               if isinstance(lay, dict) and isinstance(lay.get("config"), dict)} - {None}
    return formats != {"channels_first"}


def declared_input(config: dict) -> Optional[dict]:
    """``{"shape": one example's input as the app gives it (images (C, H, W)),
    "dtype": ...}`` from the input layer the configuration declares, or ``None`` when
    it declares no single fixed input."""
    inner = config.get("config") or {}
    layers = [lay for lay in inner.get("layers") or () if isinstance(lay, dict)]
    shapes = []
    for lay in layers:
        cfg = lay.get("config") if isinstance(lay.get("config"), dict) else {}
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if lay.get("class_name") == "InputLayer" or (shape and lay is layers[0]):
            shapes.append((shape, cfg.get("dtype")))
    if not shapes and isinstance(config.get("build_config"), dict):
        shapes.append((config["build_config"].get("input_shape"), None))
    if len(shapes) != 1:
        return None
    shape, dtype = shapes[0]
    if not isinstance(shape, list) or len(shape) < 2 or \
            not all(type(s) is int and s > 0 for s in shape[1:]):
        return None
    dims = [int(s) for s in shape[1:]]
    if len(dims) == 3 and _channels_last(layers):
        dims = [dims[2], dims[0], dims[1]]
    if isinstance(dtype, dict):  # a dtype policy: {"config": {"name": "float32"}}
        dtype = (dtype.get("config") or {}).get("name")
    return {"shape": dims, "dtype": dtype if isinstance(dtype, str) else "float32"}


def describe(path: str | Path, kind: str) -> dict:
    """What the probe's child answers for a Keras file: the code it would run
    (``names``), the modules of its custom objects (``modules``), the functions its
    Lambda layers name without their code (``functions``) and its declared input
    (``input``, or ``None``)."""
    config = read_config(path, kind)
    names, modules = _scan(config)
    return {"names": list(names), "modules": list(modules),
            "functions": list(named_functions(config)), "input": declared_input(config)}
