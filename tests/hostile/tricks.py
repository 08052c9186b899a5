"""Model files that are small on disk but would take gigabytes of memory, are damaged
in ways only a checksum shows, or hold weights in half precision — the cases added to
the corpus for issue #10. Each function returns the bytes of one file."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections import OrderedDict

import torch

BLOCK = 64 * 1024 ** 2


def expanded(state: OrderedDict) -> bytes:
    """Real weights plus one tensor that repeats a single stored zero 16384x16384 times:
    ~156 KB on disk, 1 GB as soon as anything makes it contiguous."""
    buf = io.BytesIO()
    torch.save(OrderedDict(state, huge=torch.zeros(1).expand(16384, 16384)), buf)
    return buf.getvalue()


def shared_storage() -> bytes:
    """300 names for one 4 MB tensor: torch stores it once, but as 300 separate arrays
    it is 1.2 GB."""
    base = torch.zeros(1_000_000)
    buf = io.BytesIO()
    torch.save({f"layer{i}.weight": base for i in range(300)}, buf)
    return buf.getvalue()


def half_precision(state: OrderedDict, dtype, fmt: str) -> bytes:
    """The shipped weights in bfloat16 or float16, as a torch file or safetensors."""
    half = OrderedDict((k, v.to(dtype)) for k, v in state.items())
    if fmt == "safetensors":
        from safetensors.torch import save

        return save(dict(half))
    buf = io.BytesIO()
    torch.save(half, buf)
    return buf.getvalue()


def _zip(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip written by hand: (name, bytes as stored, method, crc, size unpacked) each —
    so an entry can claim any size and any checksum."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, data, method, crc, size in entries:
        raw = name.encode()
        offset = out.tell()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                              len(data), size, len(raw), 0) + raw + data)
        central.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0,
                                  0x21, crc, len(data), size, len(raw), 0, 0, 0, 0, 0,
                                  offset) + raw)
    start, directory = out.tell(), central.getvalue()
    out.write(directory)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                          len(directory), start, 0))
    return out.getvalue()


def _entries(buf: bytes) -> list[tuple[str, bytes, int, int, int]]:
    with zipfile.ZipFile(io.BytesIO(buf)) as archive:
        return [(i.filename, archive.read(i), 0, i.CRC, i.file_size)
                for i in archive.infolist()]


def deflate_bomb(blocks: int = 48) -> bytes:
    """A torch checkpoint whose storage record is deflate-compressed zeros: ~3 MB on
    disk, declared (and truly) 3 GB unpacked. The CRC is the real one."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buf)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(BLOCK)
    # After a full flush the compressor starts afresh, so one block's output repeats.
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = block * blocks + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    entries = [(n, stream, 8, crc, BLOCK * blocks) if n.endswith("data/0")
               else (n, d, m, c, s) for n, d, m, c, s in _entries(buf.getvalue())]
    return _zip(entries)


def bad_crc(good: bytes) -> bytes:
    """A real checkpoint with one byte flipped inside a stored weight record; the zip's
    checksum is left as it was, so only checking it shows the damage."""
    data = bytearray(good)
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename),
                   key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<2H", data[info.header_offset + 26:
                                                    info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x5A
    return bytes(data)
