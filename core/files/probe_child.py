"""What runs inside the probe's child process, and how it answers.

The answer is a stream of frames, never a pickle, so the app unpickles nothing a
hostile file could have shaped: a one-byte tag frame, then its payload — ``J`` a JSON
object, ``T`` the raw bytes of the next tensor listed in the first JSON object. Every
failure becomes a reason in words (``{"status": "error", "reason": ...}``), with the
raw text of the error beside it for the app's log.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from core.files.limits import MAX_FILE_BYTES, Refusal, size_words
from core.files.sniff import sniff

MEMORY = ("needs more memory than this computer has free to be read; close other "
          "programs, or use a smaller model")
UNKNOWN = ("could not be read: it is damaged, or was written in a way Mechscope does not "
           "understand; re-save or re-download it")


def send_json(conn, obj: dict) -> None:
    conn.send_bytes(b"J")
    conn.send_bytes(json.dumps(obj).encode("utf-8"))


def _peak_kb() -> int:
    """This process's peak resident memory in KB (0 where the OS does not say)."""
    try:
        import resource
    except ImportError:
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _answer(conn, path: Path, kind: str, size: int) -> None:
    if kind == "safetensors":
        from core.files import safetensors_reader as reader

        with open(path, "rb") as handle:
            entries, start = reader.read_header(handle, size)
            listing = [(n, reader.out_dtype(d), s) for n, d, s, _, _ in entries]
            _send_tensors(conn, listing, reader.iter_arrays(handle, entries, start))
    elif kind in ("torch-zip", "pickle"):
        from core.files import torch_reader

        tensors, names = torch_reader.load(path, kind, size)
        if tensors is None:
            send_json(conn, {"status": "trust", "names": list(names)})
            return
        listing = torch_reader.plan(tensors)
        _send_tensors(conn, listing, torch_reader.iter_arrays(tensors))
    elif kind == "torchscript":
        send_json(conn, {"status": "trust", "names": []})
    elif kind == "onnx":
        from core.files.onnx_check import check_onnx

        check_onnx(path)
        send_json(conn, {"status": "onnx"})
    elif kind in ("keras", "keras-h5", "hdf5"):
        from core.files.keras_config import describe

        send_json(conn, {"status": "keras", **describe(path, kind)})
    elif kind == "broken-zip":
        raise Refusal("is a damaged ZIP archive, perhaps cut short by an interrupted "
                      "download; re-save or re-download it")
    else:
        raise Refusal(f"is {sniff(path).description}, not a model Mechscope can open "
                      "(it opens PyTorch checkpoints, safetensors, ONNX and Keras files)")


def _send_tensors(conn, listing, arrays) -> None:
    send_json(conn, {"status": "tensors",
                     "tensors": [[n, d, list(s)] for n, d, s in listing]})
    for (_name, dtype, shape), array in zip(listing, arrays):
        if str(array.dtype) != dtype or array.shape != tuple(shape):
            raise Refusal(UNKNOWN, f"{_name}: {array.dtype}{array.shape} listed as "
                          f"{dtype}{tuple(shape)}")
        conn.send_bytes(b"T")
        conn.send_bytes(memoryview(array.reshape(-1)).cast("B") if array.size else b"")


def child(path_str: str, conn) -> None:
    """Read ``path_str`` and answer on ``conn``; the process is killed if it hangs."""
    # Explicit weights_only=True already wins over this variable; removing it as well
    # means no code path in this process can turn the safe loader off.
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    # A forked child inherits the parent's warning filters (tests make them errors);
    # parser warnings about a file are not failures to read it.
    warnings.simplefilter("ignore")
    start_kb = _peak_kb()  # a forked child starts with its parent's pages
    path = Path(path_str)
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            raise Refusal(f"is {size_words(size)}; Mechscope opens models up to "
                          f"{size_words(MAX_FILE_BYTES)}")
        _answer(conn, path, sniff(path).kind, size)
        status = {"status": "done"}
    except Refusal as exc:
        status = {"status": "error", "reason": exc.reason, "detail": exc.detail}
    except MemoryError as exc:
        status = {"status": "error", "reason": MEMORY, "detail": f"MemoryError: {exc}"}
    except RecursionError as exc:
        status = {"status": "error", "reason": "is nested too deeply to be read; it is "
                  "damaged or hostile", "detail": f"RecursionError: {exc}"}
    except Exception as exc:  # any other parser error is a message about the file
        status = {"status": "error", "reason": UNKNOWN,
                  "detail": f"{type(exc).__name__}: {exc}"}
    status.update(start_kb=start_kb, peak_kb=_peak_kb())
    try:
        send_json(conn, status)
    except (OSError, ValueError):  # the app stopped listening: nothing left to tell
        pass


def image_child(path_str: str, conn) -> None:
    """Decode an image in the child; the answer is a JSON frame like the model's."""
    warnings.simplefilter("ignore")
    try:
        from core.files.images import load_image

        load_image(path_str)
        status = {"status": "done"}
    except Exception as exc:  # InputError, or a decoder's own error, in words
        from core.errors import MechscopeError

        if isinstance(exc, MechscopeError):
            status = {"status": "error", "message": str(exc)}
        else:
            status = {"status": "error", "message": f"{Path(path_str).name} could not be "
                      "decoded as an image; it is damaged or in a variant Mechscope cannot "
                      "read — re-save it as PNG.", "detail": f"{type(exc).__name__}: {exc}"}
    send_json(conn, status)
