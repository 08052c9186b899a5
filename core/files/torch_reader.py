"""Read a PyTorch checkpoint's weights as data, checking what it declares first.

Runs inside the probe process. Before ``torch.load``: the zip directory's declared
sizes (a decompression bomb is refused unread) and every member's checksum (a damaged
archive is refused, not loaded with garbage weights). After it, before any tensor is
converted: element counts from tensor metadata, so a tensor that repeats one stored
number a billion times (``expand``) never becomes a billion numbers in memory.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from core.files.limits import (
    GROWTH_ALLOWANCE,
    MAX_ANSWER_BYTES,
    MAX_FILE_BYTES,
    MAX_GROWTH,
    MAX_PARAMETERS,
    MAX_UNPACK_RATIO,
    UNPACK_ALLOWANCE,
    Refusal,
    size_words,
)

#: dtypes numpy cannot hold, or the model does not want: widened to float32.
WIDENED = ("bfloat16", "float16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
           "float8_e5m2fnuz")
SENT_DTYPES = {"float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"}


def check_zip(path: Path, file_size: int) -> None:
    """Refuse a torch zip that would unpack too large, or whose checksums are wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            declared = sum(info.file_size for info in infos)
            limit = min(MAX_FILE_BYTES, max(UNPACK_ALLOWANCE, MAX_UNPACK_RATIO * file_size))
            if declared > limit:
                raise Refusal(f"would unpack to {size_words(declared)} from a "
                              f"{size_words(file_size)} file, so it is a decompression "
                              "bomb or badly damaged; it was not unpacked")
            for info in infos:
                if info.flag_bits & 0x1:
                    raise Refusal("is encrypted with a password; save it again without "
                                  "encryption")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise Refusal("uses a kind of ZIP compression PyTorch cannot read; "
                                  "re-save it with torch.save")
                with archive.open(info) as member:  # zipfile checks the CRC at the end
                    while member.read(1 << 22):
                        pass
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise Refusal("is damaged (a checksum does not match); re-save or "
                          "re-download it", str(exc)) from None
        raise Refusal("is damaged (its ZIP archive is broken or cut short); re-save or "
                      "re-download it", str(exc)) from None


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


def _unwrap(state):
    """Training scripts often save {"model_state_dict": ..., "epoch": ...}."""
    for key in ("state_dict", "model_state_dict", "model"):
        inner = state.get(key) if isinstance(state, dict) else None
        if isinstance(inner, dict):
            return inner
    return state


def _tensors(obj, prefix: str = "") -> dict:
    """Tensors of a (possibly nested) checkpoint dict, keyed by dotted path, untouched."""
    import torch

    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            out.update(_tensors(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def load(path: Path, kind: str, file_size: int) -> tuple[Optional[dict], tuple[str, ...]]:
    """(tensors by name, ()) when the file is data; (None, globals) when it is code."""
    import torch

    if kind == "torch-zip":
        check_zip(path, file_size)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # it needs code to unpickle: list which, run none
        if kind == "torch-zip":
            names = tuple(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        else:
            with open(path, "rb") as handle:
                names = pickle_globals(handle.read(64 * 1024 ** 2))
        return None, names
    except (RuntimeError, EOFError, ValueError, OSError, KeyError) as exc:
        if "allocate" in str(exc):
            raise MemoryError(str(exc)) from None
        raise Refusal("could not be read: it is damaged, cut short, or not a PyTorch "
                      "checkpoint; re-save it with torch.save(model.state_dict(), path)",
                      f"{type(exc).__name__}: {exc}") from None
    tensors = _tensors(_unwrap(loaded)) if isinstance(loaded, dict) else {}
    if not tensors:
        raise Refusal("holds no tensors; save the weights with "
                      "torch.save(model.state_dict(), path)")
    return tensors, ()


def _out_dtype(tensor) -> str:
    name = str(tensor.dtype).removeprefix("torch.")
    return "float32" if name in WIDENED else name


def plan(tensors: dict) -> list[tuple[str, str, tuple[int, ...]]]:
    """[(name, dtype sent, shape)], refusing — from metadata only — what would take
    too much memory or cannot be read as plain numbers."""
    import torch

    total_numbers = total_bytes = 0
    out, storages = [], {}
    for name, tensor in tensors.items():
        if tensor.layout != torch.strided or tensor.is_quantized or tensor.is_meta:
            raise Refusal(f"holds {name!r} as a sparse, quantized or empty-shell tensor, "
                          "which Mechscope cannot read; save plain (dense) weights")
        dtype = _out_dtype(tensor)
        if dtype not in SENT_DTYPES:
            raise Refusal(f"stores {name!r} as {dtype} numbers, which Mechscope cannot "
                          "read; save it as float32")
        count = tensor.numel()
        total_numbers += count
        if total_numbers > MAX_PARAMETERS:
            raise Refusal(f"holds more than {MAX_PARAMETERS:,} numbers; Mechscope opens "
                          "models up to that size")
        held = count * np.dtype(dtype).itemsize
        storage = tensor.untyped_storage()
        stored = storage.nbytes()
        storages[storage.data_ptr()] = stored
        if count * tensor.element_size() > stored and held > GROWTH_ALLOWANCE:
            kept = stored // tensor.element_size()
            raise Refusal(f"holds {name!r}, which repeats {kept:,} stored "
                          f"number{'s' if kept != 1 else ''} to look like {count:,} (an "
                          "expanded tensor) "
                          f"and would take {size_words(held)} of memory; save it with "
                          "tensor.contiguous() first")
        total_bytes += held
        out.append((name, dtype, tuple(tensor.shape)))
    if total_bytes > MAX_ANSWER_BYTES:
        raise Refusal(f"would take {size_words(total_bytes)} of memory once read; "
                      f"Mechscope opens models up to {size_words(MAX_ANSWER_BYTES)}")
    # Half precision doubles in float32 and tied weights share a storage; more than
    # that is one storage counted many times over.
    stored_bytes = sum(storages.values())
    if total_bytes > MAX_GROWTH * stored_bytes + GROWTH_ALLOWANCE:
        raise Refusal(f"would take {size_words(total_bytes)} of memory from "
                      f"{size_words(stored_bytes)} of stored numbers, because its tensors "
                      "repeat shared storage; save each tensor with tensor.clone() first")
    return out


def iter_arrays(tensors: dict) -> Iterator[np.ndarray]:
    """Each tensor as a C-contiguous numpy array, converted one at a time."""
    import torch

    for tensor in tensors.values():
        tensor = tensor.detach()
        if _out_dtype(tensor) != str(tensor.dtype).removeprefix("torch."):
            tensor = tensor.to(torch.float32)
        yield np.ascontiguousarray(tensor.numpy())
