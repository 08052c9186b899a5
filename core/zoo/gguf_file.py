"""A GGUF file's header and tensor table, read straight from its bytes.

``gguf.GGUFReader`` builds a numpy view for every part of every metadata value: for
SmolLM2's 49,152 tokens and 48,900 merges that is ~5 s of CPU, more than the
dequantisation itself. This reads the same format (v2/v3, little-endian) with
``struct`` in ~0.1 s; the tensors' bytes stay memory-mapped and go to
``gguf.quants.dequantize`` as GGUFReader would hand them over.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Metadata value types of the GGUF spec: fixed-size ones by struct format.
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q",
           11: "q", 12: "d"}
_NUMPY = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32,
          6: np.float32, 7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class Tensor:
    name: str
    #: numpy order (slowest axis first), as the tensor is used
    shape: tuple[int, ...]
    ggml_type: int
    #: the stored bytes, (*shape[:-1], bytes per row) uint8 for block types, else the
    #: values themselves; a view of the memory-mapped file
    data: np.ndarray


class GGUFFile:
    """``fields``: metadata key -> value (str, number, list of str, or a numpy array
    for numeric arrays); ``tensors``: :class:`Tensor` in file order."""

    def __init__(self, path: Path) -> None:
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

        with open(path, "rb") as fh:
            # Slices of an mmap are plain bytes (a numpy memmap's slices are costly
            # objects: GGUFReader's slowness); the tensors view it through numpy.
            self._buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        whole = np.frombuffer(self._buf, dtype=np.uint8)
        if self._buf[:4] != b"GGUF":
            raise ValueError(f"{Path(path).name} is not a GGUF file.")
        self._pos = 4
        version, n_tensors, n_fields = self._unpack("<IQQ")
        if version not in (2, 3):
            raise ValueError(f"{Path(path).name} is GGUF version {version}; "
                             "versions 2 and 3 can be read.")
        self.fields = {}
        for _ in range(n_fields):
            key = self._string()
            (kind,) = self._unpack("<I")
            self.fields[key] = self._value(kind)
        infos = []
        for _ in range(n_tensors):
            name = self._string()
            (n_dims,) = self._unpack("<I")
            dims = self._unpack(f"<{n_dims}Q")
            kind, offset = self._unpack("<IQ")
            infos.append((name, tuple(reversed(dims)), kind, offset))
        align = int(self.fields.get("general.alignment", 32))
        start = -(-self._pos // align) * align
        self.tensors = []
        for name, shape, kind, offset in infos:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(kind)]
            count = int(np.prod(shape))
            raw = whole[start + offset:start + offset + count // block * size]
            if block == 1:  # plain values (F32, F16 …)
                data = raw.view(np.dtype(f"<f{size}")).reshape(shape)
            else:
                data = raw.reshape(*shape[:-1], shape[-1] // block * size)
            self.tensors.append(Tensor(name, shape, kind, data))

    def _unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from(fmt, self._buf, self._pos)
        self._pos += struct.calcsize(fmt)
        return values

    def _string(self) -> str:
        (n,) = struct.unpack_from("<Q", self._buf, self._pos)
        start = self._pos + 8
        self._pos = start + n
        return self._buf[start:self._pos].decode("utf-8")

    def _value(self, kind: int):
        if kind == _STRING:
            return self._string()
        if kind in _SCALAR:
            return self._unpack("<" + _SCALAR[kind])[0]
        if kind != _ARRAY:
            raise ValueError(f"unknown GGUF value type {kind}")
        inner, count = self._unpack("<IQ")
        if inner == _STRING:
            return [self._string() for _ in range(count)]
        if inner in _NUMPY:
            dtype = np.dtype(_NUMPY[inner]).newbyteorder("<")
            end = self._pos + count * dtype.itemsize
            values = np.frombuffer(self._buf[self._pos:end], dtype)
            self._pos = end
            return values
        return [self._value(inner) for _ in range(count)]  # arrays of arrays
