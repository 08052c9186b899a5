"""Open a user's checkpoint: find the zoo architecture its weights fit, or say exactly
which tensors do not fit. Files that are code open only after the user trusted them."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import MechscopeError, ModelLoadError
from core.files.probe import probe
from core.zoo import ZOO, ZooEntry

log = logging.getLogger(__name__)

SHOWN_KEYS = 6


class NeedsInputSpec(MechscopeError):
    """The model's input cannot be matched to a dataset without asking the user.

    Carries the file's SHA-256 (the answer is remembered per model), a first guess and,
    for a file that is code, the SHA-256 the user trusted, so that the retry with the
    spec does not ask for trust again."""

    def __init__(self, message: str, path: str = "", sha256: str = "",
                 guess=None, trusted_sha256: Optional[str] = None) -> None:
        super().__init__(message)
        self.path, self.sha256, self.guess = path, sha256, guess
        self.trusted_sha256 = trusted_sha256

    def __reduce__(self):
        return (type(self), (str(self), self.path, self.sha256, self.guess,
                             self.trusted_sha256))


class NeedsData(MechscopeError):
    """A model on its own architecture whose input fits no built-in dataset: the user
    must choose their own inputs and labels (a .npz, a folder of images, a CSV).

    Carries the file's SHA-256 (the choice can be remembered per model) and the
    SHA-256 the user trusted, so that asking for data does not ask for trust again."""

    def __init__(self, message: str, path: str = "", sha256: str = "",
                 trusted_sha256: Optional[str] = None) -> None:
        super().__init__(message)
        self.path, self.sha256, self.trusted_sha256 = path, sha256, trusted_sha256

    def __reduce__(self):
        return (type(self), (str(self), self.path, self.sha256, self.trusted_sha256))


class NeedsTrust(MechscopeError):
    """The file is code (a pickled module or a TorchScript archive); opening it runs it.

    Carries what the trust dialog shows. Picklable with its fields (it crosses from the
    compute process to the window)."""

    def __init__(self, message: str, path: str = "", size: int = 0, sha256: str = "",
                 description: str = "", unsafe_globals: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path, self.size, self.sha256 = path, size, sha256
        self.description, self.unsafe_globals = description, tuple(unsafe_globals)

    def __reduce__(self):
        return (type(self), (str(self), self.path, self.size, self.sha256,
                             self.description, self.unsafe_globals))


def _shapes(entry: ZooEntry) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in entry.builder().state_dict().items()}


def _describe_mismatch(state: dict, wanted: dict) -> str:
    missing = sorted(set(wanted) - set(state))
    extra = sorted(set(state) - set(wanted))
    shapes = sorted(k for k in set(state) & set(wanted) if tuple(state[k].shape) != wanted[k])
    parts = []
    for label, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes)):
        if keys:
            more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
            parts.append(f"{label}: {', '.join(keys[:SHOWN_KEYS])}{more}")
    return "; ".join(parts)


def match_zoo(state: dict, name: str = "the file") -> ZooEntry:
    """The zoo architecture whose parameters have exactly these names and shapes.

    Raises
    ------
    ModelLoadError
        Listing, for the closest architecture, the missing, unexpected and mis-shaped keys.
    """
    best: Optional[tuple[int, ZooEntry, dict]] = None
    for entry in ZOO.values():
        if entry.load_state is not None:  # external packages are opened from the zoo list
            continue
        wanted = _shapes(entry)
        if set(wanted) == set(state) and all(tuple(state[k].shape) == wanted[k]
                                             for k in wanted):
            return entry
        overlap = len(set(wanted) & set(state))
        if best is None or overlap > best[0]:
            best = (overlap, entry, wanted)
    hint = ""
    if best is not None and best[0]:
        hint = (f" Closest is {best[1].name}: "
                f"{_describe_mismatch(state, best[2])}.")
    raise ModelLoadError(f"The weights in {name} do not fit any architecture Mechscope "
                         f"knows ({', '.join(e.name for e in ZOO.values())}).{hint}")


def open_checkpoint(path: str | Path, trusted_sha256: Optional[str] = None):
    """(ZooEntry, state dict of numpy arrays, ProbeResult) for a user's file of weights;
    for an ONNX file (checked by the probe) and for a file of code the user trusted
    (a pickled module or TorchScript, opened on its own architecture by
    :mod:`core.files.own_model`), ``(None, None, ProbeResult)``.

    A file that is code raises :class:`NeedsTrust` unless ``trusted_sha256`` equals its
    SHA-256 — trust is given per file content, never per session.
    """
    result = probe(path)
    if result.sniffed.kind == "onnx":
        return None, None, result
    if result.needs_trust:
        if trusted_sha256 != result.sha256:
            raise NeedsTrust(
                f"{Path(path).name} is {result.sniffed.description}: opening it runs code "
                "from the file.", result.path, result.size, result.sha256,
                result.sniffed.description, result.unsafe_globals)
        return None, None, result
    return match_zoo(result.state, Path(path).name), result.state, result


def _resave_hint(example: str) -> str:
    """How to save a model whose pickle cannot be loaded so that it opens. Weights alone
    open only on an architecture Mechscope has (its own classes, in ``core``); a class
    of the user's needs its code saved with it, or the window opened from its script."""
    if not example or example.startswith("core."):
        return "save its weights with torch.save(model.state_dict(), path) and open that."
    return ("save it as TorchScript (torch.jit.save(torch.jit.trace(model, example_inputs), "
            "path)) and open that, or call mechscope.show(model, inputs, labels) from the "
            "script that defines it.")


def load_trusted(path: str | Path, kind: str, unsafe_globals: tuple[str, ...] = ()):
    """Only after the user said yes to this exact file: run it and take the module
    (``kind``: the sniffed kind, ``"torchscript"`` or a pickle). Floating-point
    weights become float32, which the adapters feed."""
    import torch

    name = Path(path).name
    try:
        if kind == "torchscript":
            with warnings.catch_warnings():  # TorchScript is deprecated, not yet gone
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        else:
            module = torch.load(str(path), map_location="cpu", weights_only=False)
    except (ImportError, AttributeError) as exc:
        log.info("trusted load of %s: %s: %s", name, type(exc).__name__, exc)
        example = next((g for g in unsafe_globals if "torch" not in g), "")
        hint = f" (such as {example})" if example else ""
        raise ModelLoadError(f"{name} is a whole pickled model whose code{hint} is not "
                             f"available here; {_resave_hint(example)}") from None
    except Exception as exc:  # running the file's code can fail in any way
        log.info("trusted load of %s: %s: %s", name, type(exc).__name__, exc)
        example = next((g for g in unsafe_globals if "torch" not in g), "")
        raise ModelLoadError(f"{name} could not be loaded even when trusted: running it "
                             f"failed; {_resave_hint(example)}") from None
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"{name} holds a Python {type(module).__name__} rather than "
                             "a model; save the model or its state_dict instead.")
    if kind != "torchscript" and any(p.is_floating_point() and p.dtype != torch.float32
                                     for p in module.parameters()):
        module = module.float()  # bfloat16 / float64 weights, float32 inputs
    return module


def as_torch_state(state: dict) -> dict:
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
