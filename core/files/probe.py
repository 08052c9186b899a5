"""Read an untrusted model file in a separate, short-lived process.

A hostile or broken file can crash or hang a parser (pickle, zip, protobuf). So the
parsing happens in a child process with a time limit, and the app only ever receives
plain numpy arrays and strings from it. If the child dies, the user is told that the
file crashed the parser; the app stays up. Nothing here executes code from the file:
pickles are read with ``weights_only=True``; files that are code (a pickled module, a
TorchScript archive) are only described, for the user to decide whether to trust them.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import ModelLoadError
from core.files.sniff import Sniffed, sniff

TIME_LIMIT_S = 10.0
MAX_FILE_BYTES = 2 * 1024 ** 3
MAX_HEADER_BYTES = 100 * 1024 ** 2   # a safetensors header larger than this is hostile
MAX_PARAMETERS = 500_000_000


@dataclass(frozen=True)
class ProbeResult:
    """What the probe learned. ``state`` holds the weights when they could be read as
    data; ``needs_trust`` when the file is code that would have to run to be opened."""

    path: str
    size: int
    sha256: str
    sniffed: Sniffed
    state: Optional[dict] = None
    needs_trust: bool = False
    unsafe_globals: tuple[str, ...] = field(default_factory=tuple)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _flatten(obj, prefix: str = "") -> dict:
    """Tensors of a (possibly nested) checkpoint dict as numpy, keyed by dotted path."""
    import torch

    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj.detach().cpu().numpy()
    elif isinstance(obj, dict):
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _unwrap(state: dict) -> dict:
    """Training scripts often save {"model_state_dict": ..., "epoch": ...}."""
    for key in ("state_dict", "model_state_dict", "model"):
        inner = state.get(key) if isinstance(state, dict) else None
        if isinstance(inner, dict):
            return inner
    return state


def _read_safetensors(path: Path) -> dict:
    with open(path, "rb") as handle:
        header = int.from_bytes(handle.read(8), "little")
    if header > MAX_HEADER_BYTES or header + 8 > path.stat().st_size:
        raise ValueError(f"its header claims {header:,} bytes, more than the file "
                         "holds or any real model needs")
    from safetensors.numpy import load_file

    return load_file(str(path))


def pickle_globals(data: bytes) -> tuple[str, ...]:
    """The ``module.name`` globals a pickle would import, read with pickletools — the
    opcodes are only listed, never executed."""
    import pickletools

    found, strings = [], []
    try:
        for opcode, arg, _pos in pickletools.genops(data):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(str(arg))
            elif opcode.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # a damaged pickle: list what was found before the damage
        pass
    return tuple(dict.fromkeys(found))


def _read_pickle(path: Path, kind: str) -> tuple[Optional[dict], tuple[str, ...]]:
    """Weights via ``weights_only=True``; else the globals that would have to run."""
    import pickle

    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if kind == "torch-zip":
            names = tuple(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        else:
            names = pickle_globals(path.read_bytes()[:64 * 1024 ** 2])
        return None, names
    state = _flatten(_unwrap(loaded)) if isinstance(loaded, dict) else {}
    if not state:
        raise ValueError("it holds no tensors")
    return state, ()


def _external_ok(path: Path, location: str) -> bool:
    """External tensor data must live inside the model's own folder: no absolute paths,
    no ``..``, no symlinks pointing elsewhere."""
    if not location or Path(location).is_absolute() or ".." in Path(location).parts:
        return False
    folder = path.parent.resolve()
    target = path.parent / location
    if target.is_symlink():
        return False
    try:
        target.resolve().relative_to(folder)
    except ValueError:
        return False
    return True


def _check_onnx(path: Path) -> None:
    """Load, check and compile the graph — refusing external data that escapes."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = {e.key: e.value for e in tensor.external_data}.get("location", "")
            if not _external_ok(path, location):
                raise ValueError(f"it points to tensor data outside its folder "
                                 f"({location!r}); refused")
    onnx.checker.check_model(str(path))
    options = ort.SessionOptions()
    options.log_severity_level = 4
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _child(path_str: str, conn) -> None:
    # Explicit weights_only=True already wins over this variable; removing it as well
    # means no code path in this process can turn the safe loader off.
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    # A forked child inherits the parent's warning filters (tests make them errors);
    # parser warnings about a file are not failures to read it.
    warnings.simplefilter("ignore")
    path = Path(path_str)
    kind = sniff(path).kind
    try:
        if kind == "safetensors":
            conn.send(("ok", _read_safetensors(path), ()))
        elif kind in ("torch-zip", "pickle"):
            state, names = _read_pickle(path, kind)
            conn.send(("ok", state, names))
        elif kind == "torchscript":
            conn.send(("ok", None, ()))
        elif kind == "onnx":
            _check_onnx(path)
            conn.send(("onnx", None, ()))
        else:
            conn.send(("error", f"is {sniff(path).description}, not a model Mechscope "
                                "can open", ()))
    except Exception as exc:  # any parser error is a message about the file
        conn.send(("error", f"could not be read: {type(exc).__name__}: {exc}", ()))


def _image_child(path_str: str, conn) -> None:
    warnings.simplefilter("ignore")
    try:
        from core.files.images import load_image

        load_image(path_str)
        conn.send(("ok", None, ()))
    except Exception as exc:  # InputError or a decoder's own error: the message is sent
        conn.send(("error", str(exc), ()))


def probe_image(path: str | Path, time_limit: float = TIME_LIMIT_S) -> None:
    """Decode an image in a child process first, so a decoder crash or hang on a hostile
    file costs a message, not the compute process. Raises ``InputError``."""
    from core.errors import InputError

    message, exitcode = _run_child(_image_child, Path(path), time_limit)
    name = Path(path).name
    if message is None:
        reason = (f"did not finish within {time_limit:.0f} s" if exitcode == -9
                  else f"crashed the image decoder (exit code {exitcode})")
        raise InputError(f"{name} {reason}; it was not opened.")
    if message[0] == "error":
        raise InputError(message[1])


def _run_child(target, path: Path, time_limit: float):
    """Run ``target(path, conn)`` in a child; (its message or None, its exit code)."""
    # fork is fast and safe here (the child touches no GUI); elsewhere spawn.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=target, args=(str(path), child), daemon=True)
    process.start()
    child.close()
    message = None
    try:
        if parent.poll(time_limit):
            message = parent.recv()
    except (EOFError, OSError):
        message = None
    finally:
        if process.is_alive():
            process.kill()
        process.join(2)
        parent.close()
    return message, process.exitcode


def probe(path: str | Path, time_limit: float = TIME_LIMIT_S) -> ProbeResult:
    """Parse ``path`` in a child process and describe it.

    Raises
    ------
    ModelLoadError
        Unreadable, not a model, damaged, too large, crashed or hung the parser.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path} is not a file.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ModelLoadError(f"{path.name} is {size / 1024 ** 3:.1f} GB; Mechscope opens "
                             f"models up to {MAX_FILE_BYTES / 1024 ** 3:.0f} GB.")
    sniffed = sniff(path)
    message, exitcode = _run_child(_child, path, time_limit)
    if message is None:
        # Killed by us (-9) means it ran out of time; anything else, it died by itself.
        reason = (f"did not finish within {time_limit:.0f} s" if exitcode == -9
                  else f"crashed the parser (exit code {exitcode})")
        raise ModelLoadError(f"{path.name} {reason}; it was not opened.")
    status, payload, names = message
    if status == "error":
        raise ModelLoadError(f"{path.name} {payload}.")
    if status == "onnx":  # checked and compiled in the child: safe to open here
        return ProbeResult(str(path), size, sha256_of(path), sniffed)
    if payload is not None and sum(a.size for a in payload.values()) > MAX_PARAMETERS:
        raise ModelLoadError(f"{path.name} holds more than {MAX_PARAMETERS:,} numbers.")
    needs_trust = payload is None
    return ProbeResult(str(path), size, sha256_of(path), sniffed,
                       {k: np.asarray(v) for k, v in payload.items()} if payload else None,
                       needs_trust, tuple(names))
