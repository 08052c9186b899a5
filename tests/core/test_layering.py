"""The dependency rules, checked in a fresh interpreter so transitive imports count."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _banned_after_import(package: str, banned: tuple[str, ...]) -> str:
    code = (
        "import importlib, pkgutil, sys\n"
        f"import {package}\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(m.name)\n"
        f"print(sorted(n for n in sys.modules if n.split('.')[0] in {banned!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def test_core_imports_no_qt():
    assert _banned_after_import("core", ("PySide6", "shiboken6", "pyqtgraph")) == "[]"


def test_gui_imports_no_torch():
    assert _banned_after_import("gui", ("torch", "onnxruntime")) == "[]"
