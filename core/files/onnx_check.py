"""Check an ONNX file inside the probe process: parse, validate, compile — and refuse
tensor data stored outside the model's folder, or in anything but a regular file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.files.limits import Refusal

DECODE = ("is damaged or cut short: its ONNX data cannot be decoded; re-download or "
          "re-export it")
INVALID = ("could not be read as a working ONNX model: it fails ONNX's own checks; "
           "re-export it from the program that made it")
RUNTIME = ("could not be prepared to run: onnxruntime refused it (it may use an operator "
           "or opset version it does not support); re-export it with a standard opset")


def external_problem(path: Path, location: str) -> str:
    """Why external tensor data at ``location`` is refused, or "" if it is fine.

    It must live inside the model's own folder (no absolute paths, no ``..``, no
    symlinks pointing elsewhere) and be a regular file: a named pipe would hang the
    reader."""
    outside = (f"points to tensor data outside its folder ({location!r}), which "
               "Mechscope refuses; keep the data file next to the model")
    if not location or Path(location).is_absolute() or ".." in Path(location).parts:
        return outside
    target = path.parent / location
    try:
        if target.is_symlink():
            return outside
        target.resolve().relative_to(path.parent.resolve())
    except (ValueError, OSError):
        return outside
    try:
        regular = stat.S_ISREG(os.stat(target).st_mode)
    except OSError:
        regular = False
    if not regular:
        return (f"points to tensor data in {location!r}, which is missing or not a "
                "regular file; put the data file next to the model")
    return ""


def check_onnx(path: Path) -> None:
    """Load, check and compile the graph; raises :class:`Refusal` in words."""
    import onnx
    import onnxruntime as ort
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise Refusal(DECODE, f"{type(exc).__name__}: {exc}") from None
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = {e.key: e.value for e in tensor.external_data}.get("location", "")
            problem = external_problem(path, location)
            if problem:
                raise Refusal(problem)
    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, DecodeError, ValueError) as exc:
        raise Refusal(INVALID, f"{type(exc).__name__}: {exc}") from None
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error classes are not importable API
        raise Refusal(RUNTIME, f"{type(exc).__name__}: {exc}") from None
