"""Read an untrusted model file in a separate, short-lived process.

A hostile or broken file can crash or hang a parser (pickle, zip, protobuf). So the
parsing happens in a child process with a time limit, and the app only ever receives
JSON and raw tensor bytes from it (:mod:`core.files.probe_child`), never a pickle, and
never more than :data:`MAX_ANSWER_BYTES`. If the child dies, the user is told that the
file crashed the parser; the app stays up. Nothing here executes code from the file:
pickles are read with ``weights_only=True``; files that are code (a pickled module, a
TorchScript archive) are only described, for the user to decide whether to trust them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing as mp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import InputError, ModelLoadError
from core.files.guard import check_path, open_regular
from core.files.limits import (  # noqa: F401
    MAX_ANSWER_BYTES,
    MAX_FILE_BYTES,
    MAX_HEADER_BYTES,
    MAX_PARAMETERS,
    size_words,
)
from core.files.probe_child import child as _child
from core.files.probe_child import image_child as _image_child
from core.files.sniff import Sniffed, sniff
from core.files.torch_reader import SENT_DTYPES, pickle_globals  # noqa: F401

log = logging.getLogger(__name__)

TIME_LIMIT_S = 10.0
MAX_JSON_BYTES = 64 * 1024 ** 2


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
    #: What the child read about a file that opens by its own framework (a Keras
    #: file's declared ``input``), as JSON values.
    details: dict = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open_regular(path, what="model file") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _BrokenAnswer(Exception):
    """The child sent something that is not a well-formed answer (or nothing in time)."""


def _frame(conn, wait: float, limit: int) -> bytes:
    if not conn.poll(wait):
        raise TimeoutError
    return conn.recv_bytes(limit)


def _json(conn, wait: float) -> dict:
    if _frame(conn, wait, 1) != b"J":
        raise _BrokenAnswer("expected a JSON frame")
    answer = json.loads(_frame(conn, wait, MAX_JSON_BYTES))
    if not isinstance(answer, dict):
        raise _BrokenAnswer("the answer is not an object")
    return answer


def _listing(raw) -> list[tuple[str, str, tuple[int, ...]]]:
    """The tensors the child will send, checked before any memory is set aside."""
    listing, total = [], 0
    for name, dtype, shape in raw:
        if not isinstance(name, str) or dtype not in SENT_DTYPES or \
                not all(type(d) is int and d >= 0 for d in shape):
            raise _BrokenAnswer(f"bad listing entry {name!r}")
        total += math.prod(shape) * np.dtype(dtype).itemsize
        if total > MAX_ANSWER_BYTES:
            raise _BrokenAnswer("the listing is larger than the answer limit")
        listing.append((name, dtype, tuple(shape)))
    return listing


def _receive_model(conn, wait: float) -> dict:
    """The child's final status, with ``state`` (name -> array) when it sent tensors."""
    answer = _json(conn, wait)
    if answer.get("status") in ("trust", "onnx", "keras"):
        final = _json(conn, wait)
        return answer if final.get("status") == "done" else final
    if answer.get("status") != "tensors":
        return answer
    state = {}
    for name, dtype, shape in _listing(answer.get("tensors", [])):
        tag = _frame(conn, wait, 1)
        if tag == b"J":  # it failed part-way: this is its final status
            return json.loads(_frame(conn, wait, MAX_JSON_BYTES))
        array = np.empty(shape, dtype)
        if not conn.poll(wait):
            raise TimeoutError
        if array.nbytes == 0:
            conn.recv_bytes(1)
        elif conn.recv_bytes_into(memoryview(array.reshape(-1)).cast("B")) != array.nbytes:
            raise _BrokenAnswer(f"{name} came back short")
        state[name] = array
    final = _json(conn, wait)
    final["state"] = state
    return final


def _receive_image(conn, wait: float) -> dict:
    return _json(conn, wait)


def _sandboxed(target, path: str, conn) -> None:
    from core.runtime import die_with_parent

    die_with_parent()  # a hung parser must not outlive the compute process
    target(path, conn)


def _run_child(target, path: Path, time_limit: float, receive=_receive_model):
    """Run ``target(path, conn)`` in a child: (its answer or None, its exit code, and
    "timeout" or "refused" when the app stopped it rather than it dying by itself)."""
    # fork is fast and safe here (the child touches no GUI); elsewhere spawn.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_sandboxed, args=(target, str(path), child), daemon=True)
    process.start()
    child.close()
    answer, stopped = None, ""
    try:
        answer = receive(parent, time_limit)
    except TimeoutError:
        stopped = "timeout" if process.is_alive() else ""
    except EOFError:  # it closed the pipe without a word: it died (join says how)
        process.join(2)
    except (OSError, ValueError, TypeError, KeyError, mp.BufferTooShort,
            _BrokenAnswer) as exc:  # json errors are ValueErrors
        stopped = "refused"
        log.info("probe of %s: no usable answer (%s: %s)", path.name, type(exc).__name__,
                 exc)
    finally:
        if process.is_alive():
            process.kill()
        process.join(2)
        parent.close()
    if isinstance(answer, dict):
        if answer.get("detail"):
            log.info("probe of %s: %s", path.name, answer["detail"])
        if answer.get("peak_kb"):
            log.info("probe child for %s: peak memory %.0f MB (started at %.0f MB)",
                     path.name, answer["peak_kb"] / 1024, answer.get("start_kb", 0) / 1024)
    return answer, process.exitcode, stopped


def _no_answer(name: str, time_limit: float, exitcode, stopped: str, what: str) -> str:
    if stopped == "timeout":
        return f"{name} did not finish within {time_limit:.0f} s; it was not opened."
    if stopped == "refused":
        return (f"{name} made the {what} send back an answer that is malformed or larger "
                f"than {size_words(MAX_ANSWER_BYTES)}; it was not opened.")
    if exitcode == -9:  # not us: the operating system stops a process that takes too much
        return (f"{name} was stopped by the operating system while being read, probably "
                "for taking too much memory; it was not opened.")
    return f"{name} crashed the {what} (exit code {exitcode}); it was not opened."


def probe_image(path: str | Path, time_limit: float = TIME_LIMIT_S) -> None:
    """Decode an image in a child process first, so a decoder crash or hang on a hostile
    file costs a message, not the compute process. Raises ``InputError``."""
    path = Path(path)
    check_path(path, what="image file", error=InputError)
    answer, exitcode, stopped = _run_child(_image_child, path, time_limit, _receive_image)
    if not isinstance(answer, dict):
        raise InputError(_no_answer(path.name, time_limit, exitcode, stopped,
                                    "image decoder"))
    if answer.get("status") == "error":
        raise InputError(str(answer.get("message")))


def probe(path: str | Path, time_limit: float = TIME_LIMIT_S) -> ProbeResult:
    """Parse ``path`` in a child process and describe it.

    Raises
    ------
    ModelLoadError
        Unreadable, not a model, damaged, too large, crashed or hung the parser.
    """
    path = Path(path)
    size = check_path(path, what="model file", error=ModelLoadError).st_size
    if size > MAX_FILE_BYTES:
        raise ModelLoadError(f"{path.name} is {size_words(size)}; Mechscope opens models "
                             f"up to {size_words(MAX_FILE_BYTES)}.")
    sniffed = sniff(path)
    answer, exitcode, stopped = _run_child(_child, path, time_limit)
    if not isinstance(answer, dict):
        raise ModelLoadError(_no_answer(path.name, time_limit, exitcode, stopped, "parser"))
    status = answer.get("status")
    if status == "error":
        raise ModelLoadError(f"{path.name} {answer.get('reason')}.")
    if status == "onnx":  # checked and compiled in the child: safe to open here
        return ProbeResult(str(path), size, sha256_of(path), sniffed)
    if status == "keras":  # described from its JSON alone; Keras opens it later
        names = tuple(str(n) for n in answer.get("names", []))
        details = {key: answer.get(key) for key in ("input", "modules", "functions")}
        return ProbeResult(str(path), size, sha256_of(path), sniffed, None, bool(names),
                           names, details)
    if status == "trust":
        names = tuple(str(n) for n in answer.get("names", []))
        return ProbeResult(str(path), size, sha256_of(path), sniffed, None, True, names)
    if status != "done" or "state" not in answer:
        raise ModelLoadError(_no_answer(path.name, time_limit, exitcode, "refused", "parser"))
    return ProbeResult(str(path), size, sha256_of(path), sniffed, answer["state"])
