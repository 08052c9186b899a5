"""Open a built-in model by name: build its architecture and load its safetensors.

safetensors holds tensors only, so opening a shipped model never runs code from a file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.errors import ModelLoadError
from core.jobs import CancelToken, report
from core.paths import resource_path
from core.zoo import ZOO, ZooEntry

log = logging.getLogger(__name__)


def zoo_entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` called ``name``; :class:`ModelLoadError` if none is."""
    try:
        return ZOO[name]
    except KeyError:
        raise ModelLoadError(
            f"There is no built-in model called {name!r}. Available: {', '.join(ZOO)}."
        ) from None


def open_zoo(name: str, token: CancelToken | None = None):
    """Build the zoo model ``name`` with its shipped weights, wrapped in a TorchAdapter.

    Raises
    ------
    ModelLoadError
        Unknown name, missing weights, or weights that do not fit the architecture.
    """
    entry = zoo_entry(name)
    report(token, 0.1, "importing torch…")
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from core.adapters.torch_adapter import TorchAdapter
    except Exception as exc:  # a broken install or bundle: say so, don't crash
        raise ModelLoadError(f"PyTorch could not be loaded, so no model can open "
                             f"({type(exc).__name__}: {exc}).") from exc

    report(token, 0.6, f"loading {Path(entry.weights).name}…")
    try:
        path = (Path(entry.weights) if Path(entry.weights).is_absolute()
                else resource_path("models", entry.weights))
        state = entry.load_state(path) if entry.load_state else load_file(str(path))
    except (FileNotFoundError, SafetensorError, OSError) as exc:
        raise ModelLoadError(
            f"The weights of {name} could not be read ({exc}). Re-run "
            f"`python -m {entry.trained_by}` to recreate them."
        ) from exc
    model = entry.builder()
    try:
        # A model built on the meta device takes the loaded tensors as they are.
        model.load_state_dict(state, strict=True,
                              assign=getattr(model, "mechscope_assign", False))
    except RuntimeError as exc:
        raise ModelLoadError(
            f"The weights in {entry.weights} do not fit the {name} architecture: {exc}"
        ) from exc
    report(token, 0.9, "describing layers…")
    dtype = "int64" if entry.kind.reads_text else "float32"
    return TorchAdapter(model, name, entry.input_shape, dtype)
