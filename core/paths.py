"""Where shipped resources live, from source or from a PyInstaller bundle.

This is the only module that knows about ``sys._MEIPASS``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The folder holding weights, datasets, icons and licences."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Path of a shipped resource, e.g. ``resource_path("models", "digits_cnn.safetensors")``.

    Raises
    ------
    FileNotFoundError
        If the resource is not shipped (a packaging mistake, not a user error).
    """
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"Shipped resource is missing: {path}")
    return path
