"""A trial run before a model is installed: build it and run two real examples in a
child process that may hang, blow up its memory or crash without taking the app along.

The probe process (:mod:`core.files.probe`) only parses a file; a graph that parses can
still loop for ever (an ONNX ``Loop`` of 2**62 steps), allocate 64 GB, or call
``os._exit`` from a trusted module's ``forward``. Here the parent watches the child's
time and resident memory and kills it past either bound, and the user gets one sentence
saying what happened and that the previous model stays open.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
import warnings
from typing import Callable, Optional

import numpy as np

from core.errors import MechscopeError, ModelLoadError
from core.runtime import die_with_parent

log = logging.getLogger(__name__)

TIME_LIMIT_S = 10.0
MEMORY_LIMIT_BYTES = 3 * 1024 ** 3 // 2  # 1.5 GiB above what the app already holds
#: Address space the child may reserve beyond its memory bound (thread stacks, malloc
#: arenas, runtime pools reserve far more than they touch).
ADDRESS_SLACK_BYTES = 4 * 1024 ** 3
POLL_S = 0.02
_ALLOCATION_WORDS = ("bad_alloc", "failed to allocate", "memoryerror", "out of memory",
                     "cannot allocate")
_KEPT = "it was not opened and the previous model stays."
#: The most of an exception's message that goes into the sentence (the rest: the log).
REASON_CHARS = 160


def _pages(pid: int, field: int) -> int:
    """Bytes of field ``field`` of /proc/<pid>/statm (0: size, 1: resident); 0 if gone."""
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[field]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_address_space(extra: int) -> None:
    """A hard stop for one huge allocation, which would otherwise be granted (lazily)
    and only caught by the parent once touched."""
    try:
        import resource

        size = _pages(os.getpid(), 0)
        if size:
            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            soft = size + extra
            if hard != resource.RLIM_INFINITY:
                soft = min(soft, hard)
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (ImportError, OSError, ValueError) as exc:  # not Linux: the parent still polls
        log.info("no address-space limit for the trial run: %s", exc)


def _output_problem(outputs, n: int) -> Optional[str]:
    """Why ``outputs`` are not one row of scores per example, or ``None``."""
    if outputs is None:
        return "it gave no output"
    out = np.asarray(outputs)
    if not np.issubdtype(out.dtype, np.floating):
        return "its output holds whole numbers or flags, not a score per class"
    if out.ndim < 2 or out.shape[0] != n:
        return (f"for {n} examples it gave an output of shape {tuple(out.shape)}, not one "
                "row of scores per example")
    if out.shape[-1] < 2:
        return f"it gives {out.shape[-1]} score per example; at least 2 classes are needed"
    return None


def _chain_text(exc: BaseException) -> str:
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


def _one_line(exc: BaseException, limit: int = REASON_CHARS) -> str:
    """``Type: first line of the message``, at most ``limit`` characters. TorchScript
    puts its interpreter's preamble and traceback first and the error itself last."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(lines) > 1 and "TorchScript" in lines[0]:
        # "builtins.RuntimeError: …": the exception the scripted code raised.
        text = lines[-1].removeprefix("builtins.")
    elif not text.startswith(type(exc).__name__):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _single_threaded() -> None:
    """GNU OpenMP is not fork-safe: a forked child whose parent already ran a parallel
    torch op hangs in its first one (PyTorch's DataLoader workers do the same)."""
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _child(build: Callable, inputs: np.ndarray, conn, address_extra: int) -> None:
    # A forked child inherits the parent's warning filters (tests make them errors);
    # a framework's warnings about a model are not failures to run it.
    warnings.simplefilter("ignore")
    die_with_parent()  # a model stuck in a native call must not outlive the app
    _single_threaded()
    _limit_address_space(address_extra)
    try:
        adapter = build()
        problem = _output_problem(adapter.run(inputs).outputs, len(inputs))
        if problem is None:
            layers = adapter.layers()
            if layers:
                adapter.run(inputs[:1], capture=(layers[0].name,))
        conn.send(("bad", problem, "") if problem else ("ok", "", ""))
    except MemoryError as exc:
        conn.send(("memory", "", _chain_text(exc)))
    except ModelLoadError as exc:  # already a whole sentence for the user
        conn.send(("load", str(exc), _chain_text(exc)))
    except MechscopeError as exc:
        conn.send(("error", str(exc), _chain_text(exc)))
    except Exception as exc:  # a model's own failure: its one line in the sentence
        log.debug("the trial run raised", exc_info=True)
        conn.send(("raised", _one_line(exc), _chain_text(exc)))
    finally:
        conn.close()


def trial_run(build: Callable[[], object], inputs: np.ndarray,
              time_limit_s: float = TIME_LIMIT_S,
              memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
              name: str = "model.onnx") -> None:
    """Build a model and run it on two examples in a child process, or refuse it.

    Parameters
    ----------
    build : callable
        Takes no argument and returns a :class:`core.model.ModelAdapter`; called in the
        child only, so nothing it builds reaches this process.
    inputs : (2, *input_shape) ndarray
        Real examples from the dataset the model will be evaluated on.
    time_limit_s : float
        Wall-clock bound for building, one run and one capture of the first layer.
    memory_limit_bytes : int
        Resident memory the child may use beyond what this process holds.
    name : str
        The file's name, for the messages.

    Raises
    ------
    ModelLoadError
        The child ran out of time or memory, crashed, raised, or gave outputs that are
        not one float row of at least two scores per example.
    """
    inputs = np.asarray(inputs)
    # fork: the child inherits ``build`` (often a closure, which spawn cannot pickle).
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    baseline = _pages(os.getpid(), 1)
    process = ctx.Process(target=_child, daemon=True,
                          args=(build, inputs, sender, memory_limit_bytes + ADDRESS_SLACK_BYTES))
    message, verdict, peak = None, None, 0
    start = time.monotonic()
    process.start()
    sender.close()
    try:
        while True:
            if receiver.poll(POLL_S):
                try:
                    message = receiver.recv()
                except (EOFError, OSError):  # it died before it could answer
                    message = None
                break
            peak = max(peak, _pages(process.pid, 1) - baseline)
            if peak > memory_limit_bytes:
                verdict = "memory"
                break
            if time.monotonic() - start > time_limit_s:
                verdict = "time"
                break
            if not process.is_alive() and not receiver.poll(0):
                break
    finally:
        if process.is_alive():
            process.kill()
        process.join(2)
        receiver.close()
    log.info("trial run of %s: %.2f s, %d MB above the app, verdict %s, message %s",
             name, time.monotonic() - start, peak // 2 ** 20, verdict, message and message[0])
    _judge(name, verdict, message, process.exitcode, time_limit_s, memory_limit_bytes)


def _judge(name: str, verdict: Optional[str], message, exitcode: Optional[int],
           time_limit_s: float, memory_limit_bytes: int) -> None:
    gigabytes = f"{memory_limit_bytes / 1024 ** 3:.1f} GB"
    memory = (f"{name} needed more than {gigabytes} of memory during a trial run on two "
              f"examples; {_KEPT}")
    if verdict == "time":
        raise ModelLoadError(f"{name} did not finish a trial run on two examples within "
                             f"{time_limit_s:g} s; {_KEPT}")
    if verdict == "memory":
        raise ModelLoadError(memory)
    if message is None:
        if exitcode == -9:  # killed, not by us: the kernel's out-of-memory killer
            raise ModelLoadError(memory)
        how = f"exit code {exitcode}" if exitcode is None or exitcode >= 0 \
            else f"stopped by signal {-exitcode}"
        raise ModelLoadError(f"{name} crashed during a trial run on two examples ({how}); "
                             f"{_KEPT}")
    status, text, details = message
    if details:
        log.warning("trial run of %s failed: %s", name, details)
    if status == "ok":
        return
    if status == "memory" or any(w in details.lower() for w in _ALLOCATION_WORDS):
        raise ModelLoadError(memory)
    if status == "load":
        raise ModelLoadError(text)
    if status == "bad":
        reason = text
    elif status == "raised":
        reason = f"its forward pass failed ({text})"
    elif text:
        reason = text.rstrip(".")
        if reason.startswith(f"{name} "):
            reason = reason[len(name) + 1:]
        reason = reason[:1].lower() + reason[1:]
    else:
        reason = "its forward pass failed (the log file has the details)"
    raise ModelLoadError(f"{name} could not run on two examples: {reason}; {_KEPT}")
