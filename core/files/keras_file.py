"""Keras files (``.keras`` zips and legacy HDF5 models): how they open, after the
probe read their description without Keras (:mod:`core.files.keras_config`).

A file whose description holds code (a ``Lambda`` layer's bytecode, a custom layer)
opens only after the user trusted it; every other file loads with Keras's safe mode
on, a second guard (Keras 3 refuses a Lambda's bytecode there, for ``.keras`` and HDF5
alike).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Optional

from core.errors import ModelLoadError
from core.jobs import CancelToken, report

log = logging.getLogger(__name__)

NOTE = "each ablation reruns the whole forward pass (a Keras model)"
DESCRIPTION = "a Keras model with Python code in it (Lambda or custom layers)"


def load_model(path: str, trusted: bool, modules: tuple[str, ...] = ()):
    """The Keras model in ``path`` on the torch backend; safe mode unless ``trusted``,
    when the ``modules`` its custom objects come from are imported first.

    Raises
    ------
    ModelLoadError
        In words, whatever Keras refused or failed at.
    """
    from core.adapters.keras_adapter import import_keras

    keras = import_keras()
    name = Path(path).name
    missing = _import_all(modules) if trusted else []
    try:
        return keras.saving.load_model(path, safe_mode=not trusted, compile=False)
    except Exception as exc:  # deserialising can fail in any way; say so in words
        log.info("Keras load of %s: %s: %s", name, type(exc).__name__, exc)
        raise ModelLoadError(_load_failure(name, str(exc), trusted, missing)) from None


def _import_all(modules: tuple[str, ...]) -> list[str]:
    """Import each module (running the user's registrations); those that fail."""
    import importlib

    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # the user's module may fail in any way
            log.info("importing %s for a Keras file: %s: %s", module, type(exc).__name__,
                     exc)
            missing.append(module)
    return missing


#: Where Keras looks up a function a file names without a module (its own, by name).
BUILTIN_FUNCTION_MODULES = ("activations", "constraints", "initializers", "losses",
                            "metrics", "optimizers", "regularizers")


def _keras_function(name: str) -> bool:
    """Whether Keras has a function of its own called ``name`` (a Lambda may name one)."""
    from core.adapters.keras_adapter import import_keras

    keras = import_keras()
    return any(callable(getattr(getattr(keras, module, None), name, None))
               for module in BUILTIN_FUNCTION_MODULES)


def _own_code(name: str, what: str, where: str = "") -> str:
    return (f"{name} uses the {what}, code of your own that is not stored in the "
            f"file{where}; Mechscope opens Keras models built from Keras's own layers and "
            "functions (and Lambda layers, whose code the file stores, once you trust it).")


def _named_function(name: str, function: str) -> str:
    return (_own_code(name, f"function {function!r}") + f" To open it, write the body of "
            f"{function} as a lambda expression in the layer (Lambda(lambda x: ...)), whose "
            "code the file stores, and save the model again.")


def _load_failure(name: str, text: str, trusted: bool, missing: list[str]) -> str:
    if "safe_mode" in text and not trusted:
        return f"{name} holds code that Keras's safe mode refused; it was not opened."
    unknown = re.search(r"Could not locate (function|class) '([^']+)'", text)
    if unknown:
        where = f" (its module {missing[0]} cannot be imported here)" if missing else ""
        return _own_code(name, f"{unknown[1]} {unknown[2]!r}", where)
    first = text.strip().splitlines()[0] if text.strip() else "an unknown error"
    return f"{name} could not be loaded by Keras: {first[:300]}"


def open_keras(path: str, trusted_sha256: Optional[str] = None, spec=None,
               token: Optional[CancelToken] = None, data: Optional[str] = None):
    """A Keras file as an :class:`core.files.opening.Opened` model, on the data
    :func:`core.files.own_model.open_own` finds for it.

    Raises ``NeedsTrust`` (the file has Lambda or custom layers), ``NeedsInputSpec``,
    ``NeedsData`` or :class:`ModelLoadError`.
    """
    from core.adapters.keras_adapter import KerasAdapter, import_keras
    from core.files.checkpoints import NeedsTrust
    from core.files.own_model import open_own
    from core.files.probe import probe

    name = Path(path).name
    report(token, 0.1, f"reading {name} in a sandbox process…")
    result = probe(path)
    trusted = result.needs_trust and trusted_sha256 == result.sha256
    functions = [f for f in (result.details or {}).get("functions") or ()
                 if isinstance(f, str)]
    if functions:  # before the trust question: trusting it could not make it open
        report(token, 0.2, "starting Keras…")
        missing = [f for f in functions if not _keras_function(f)]
        if missing:
            raise ModelLoadError(_named_function(name, missing[0]))
    if result.needs_trust and not trusted:
        raise NeedsTrust(f"{name} is {DESCRIPTION}: opening it runs code from the file.",
                         result.path, result.size, result.sha256, DESCRIPTION,
                         result.unsafe_globals)
    # Imported here, before the trial run forks: a child importing keras itself would
    # spend most of its time limit on it.
    report(token, 0.3, "starting Keras…")
    import_keras()
    declared = (result.details or {}).get("input") or {}
    shape = tuple(declared["shape"]) if declared.get("shape") else None

    modules = tuple(m for m in (result.details or {}).get("modules") or ()
                    if isinstance(m, str))

    def make(_input_shape=None, _dtype=None) -> KerasAdapter:
        return KerasAdapter(load_model(result.path, trusted, modules), f"{name} (Keras)")

    return open_own(make, name, f"{name} (Keras)", result.path, result.sha256,
                    trusted_sha256, declared_input=shape, spec=spec, data=data,
                    token=token, note=NOTE)
