"""The limits a user's model file is held to, and the refusal the readers raise.

Every limit is checked from what a file declares (sizes in a zip directory, shapes in a
header, element counts in tensor metadata) before the memory it would take is asked for.
"""

from __future__ import annotations

MB, GB = 1024 ** 2, 1024 ** 3

MAX_FILE_BYTES = 2 * GB
MAX_HEADER_BYTES = 100 * MB   # a safetensors header larger than this is hostile
MAX_PARAMETERS = 500_000_000
#: What the probe may send back: every tensor as float32 at the parameter limit.
MAX_ANSWER_BYTES = 4 * MAX_PARAMETERS
#: A torch zip stores its tensors uncompressed, so what it unpacks to stays close to its
#: size; beyond this many times its size (and the allowance) it is a decompression bomb.
MAX_UNPACK_RATIO = 20
UNPACK_ALLOWANCE = 64 * MB
#: Weights may come out larger than the numbers stored for them (float16 -> float32,
#: tied weights share one storage), but not by more than this factor, beyond the
#: allowance.
MAX_GROWTH = 4
GROWTH_ALLOWANCE = 16 * MB


class Refusal(Exception):
    """Why a file cannot be opened, as the words after its name ("is damaged …").

    Raised inside the probe process; the app shows ``"{name} {reason}."``. ``detail``
    is the raw text of the error behind it, for the log only."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


def size_words(n_bytes: float) -> str:
    """``1.5 GB``, ``156 KB``: a size the way a file manager shows it."""
    for unit, scale in (("TB", 1024 * GB), ("GB", GB), ("MB", MB), ("KB", 1024)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f}".removesuffix(".0") + f" {unit}"
    return f"{int(n_bytes)} bytes"
