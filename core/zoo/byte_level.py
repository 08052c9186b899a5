"""GPT-2's byte-level alphabet: each byte drawn as a printable character (space as
``Ġ``, newline as ``Ċ``), so a BPE vocabulary of such strings covers every byte
string. Inverting it turns a piece back into the bytes it stands for."""

from __future__ import annotations

from functools import lru_cache
from typing import Optional


@lru_cache(maxsize=1)
def _char_to_byte() -> dict[str, int]:
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:  # the unprintable bytes are drawn as 256, 257, … in order
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def piece_bytes(piece: str) -> Optional[bytes]:
    """The bytes a byte-level piece stands for; None if it is not made of that
    alphabet (an added control token such as ``<|im_start|>`` is, but reads as is)."""
    table = _char_to_byte()
    if piece.startswith("<|") and piece.endswith("|>"):
        return None
    try:
        return bytes(table[c] for c in piece)
    except KeyError:
        return None
