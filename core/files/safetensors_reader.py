"""Read a safetensors file with every declared size checked before any data is read.

The format is an 8-byte header length, a JSON header naming each tensor's dtype, shape
and byte range, then the bytes. It is parsed here rather than by the ``safetensors``
package so that each way a file can be wrong gets its own sentence, and so that
bfloat16 (which numpy lacks) can be widened to float32 one tensor at a time.
"""

from __future__ import annotations

import json
import math
from typing import BinaryIO, Iterator

import numpy as np

from core.files.limits import MAX_HEADER_BYTES, MAX_PARAMETERS, Refusal, size_words

#: safetensors dtype -> (numpy dtype of the stored bytes, numpy dtype handed on).
DTYPES = {
    "F64": ("<f8", "float64"), "F32": ("<f4", "float32"), "F16": ("<f2", "float32"),
    "BF16": ("<u2", "float32"), "I64": ("<i8", "int64"), "I32": ("<i4", "int32"),
    "I16": ("<i2", "int16"), "I8": ("i1", "int8"), "U8": ("u1", "uint8"),
    "BOOL": ("?", "bool"),
}
DAMAGED = "is damaged ({}); re-save or re-download it"


def _entry(name: str, spec) -> tuple[str, str, tuple[int, ...], int, int]:
    if not isinstance(spec, dict) or not {"dtype", "shape", "data_offsets"} <= set(spec):
        raise Refusal(DAMAGED.format(f"the header entry for {name!r} is incomplete"))
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if dtype not in DTYPES:
        raise Refusal(f"stores {name!r} as {str(dtype)[:20]} numbers, which Mechscope "
                      "cannot read; save it as float32, float16 or bfloat16")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape) \
            or len(shape) > 16:
        raise Refusal(DAMAGED.format(f"the shape of {name!r} is not a list of sizes"))
    if not isinstance(offsets, list) or len(offsets) != 2 or \
            not all(type(o) is int and o >= 0 for o in offsets) or offsets[0] > offsets[1]:
        raise Refusal(DAMAGED.format(f"the byte range of {name!r} is invalid"))
    return name, dtype, tuple(shape), offsets[0], offsets[1]


def read_header(handle: BinaryIO, file_size: int) -> tuple[list, int]:
    """([(name, dtype, shape, begin, end)], where the data starts), all checked."""
    length = int.from_bytes(handle.read(8), "little")
    if length > MAX_HEADER_BYTES or length + 8 > file_size or length < 2:
        raise Refusal(f"has a header that claims {length:,} bytes, more than the file "
                      "holds or any real model needs; it is damaged or not really a "
                      "safetensors file")
    try:
        header = json.loads(handle.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise Refusal(DAMAGED.format("its header is not valid JSON"), str(exc)) from None
    if not isinstance(header, dict):
        raise Refusal(DAMAGED.format("its header is not a table of tensors"))
    header.pop("__metadata__", None)
    if not header:
        raise Refusal("holds no tensors (its header is empty); save the weights with "
                      "safetensors.torch.save_file(model.state_dict(), path)")
    entries = [_entry(str(name), spec) for name, spec in header.items()]
    body = file_size - 8 - length
    total = 0
    for name, dtype, shape, begin, end in entries:
        count = math.prod(shape)
        total += count
        if total > MAX_PARAMETERS:
            raise Refusal(f"holds more than {MAX_PARAMETERS:,} numbers; Mechscope opens "
                          "models up to that size")
        if end - begin != count * np.dtype(DTYPES[dtype][0]).itemsize:
            raise Refusal(DAMAGED.format(f"the size of {name!r} does not match its shape"))
        if end > body:
            raise Refusal(f"is cut short: {name!r} lies beyond the end of the file's "
                          f"{size_words(file_size)}; re-download it")
    spans = sorted((b, e) for _, _, _, b, e in entries if e > b)
    if any(b < prev_end for (_, prev_end), (b, _) in zip(spans, spans[1:])):
        raise Refusal(DAMAGED.format("two of its tensors claim the same bytes"))
    return entries, 8 + length


def out_dtype(dtype: str) -> str:
    return DTYPES[dtype][1]


def iter_arrays(handle: BinaryIO, entries: list, start: int) -> Iterator[np.ndarray]:
    """Each tensor of ``entries`` as a numpy array, read one at a time."""
    for _name, dtype, shape, begin, end in entries:
        handle.seek(start + begin)
        raw = handle.read(end - begin)
        if len(raw) != end - begin:
            raise Refusal("is cut short; re-download it")
        stored = np.frombuffer(raw, DTYPES[dtype][0]).reshape(shape)
        if dtype == "BF16":  # bfloat16 is the top half of a float32
            yield (stored.astype(np.uint32) << 16).view(np.float32)
        else:
            yield stored.astype(out_dtype(dtype))
