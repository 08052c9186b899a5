"""Read ``.npy``/``.npz`` arrays of the user's with every declared size checked first.

An ``.npy`` header states the array's dtype and shape; it is read on its own (with
numpy's header readers) and the array refused if it would be too big, or needs pickle,
before a byte of data is read. An ``.npz`` is a zip of such files: its directory's
declared sizes are checked first too, and each member's checksum when it is read.
"""

from __future__ import annotations

import logging
import math
import zipfile
from pathlib import Path
from typing import BinaryIO, Optional

import numpy as np

from core.errors import InputError
from core.files.guard import open_regular
from core.files.limits import size_words
from core.jobs import CancelToken, report

log = logging.getLogger(__name__)
#: Read a big array this much at a time, checking for Cancel in between.
CHUNK_BYTES = 8 * 1024 ** 2

MAX_ARRAY_BYTES = 512 * 1024 ** 2
RESAVE = "re-save it with numpy.savez"


#: numpy dtype kinds that are not plain numbers, in words.
KIND_WORDS = {"U": "text", "S": "text (bytes)", "c": "complex numbers",
              "M": "dates", "m": "time spans", "V": "raw records"}


def read_header(handle: BinaryIO, label: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) from an ``.npy`` header, checked against the limits."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(handle)
        else:
            raise InputError(f"{label} uses .npy version {version[0]}.{version[1]}, which "
                             f"Mechscope cannot read; {RESAVE}.")
    except InputError:
        raise
    except Exception as exc:  # numpy raises ValueError, EOFError, SyntaxError, ...
        log.info("npy header of %s: %s: %s", label, type(exc).__name__, exc)
        raise InputError(f"{label} is damaged: its .npy header cannot be read; "
                         f"{RESAVE}.") from None
    if dtype.hasobject:
        raise InputError(f"{label} holds Python objects, which could only be read by "
                         "running code from the file (pickle); save plain numbers instead.")
    if dtype.kind not in "biuf" or dtype.fields is not None:
        what = KIND_WORDS.get(dtype.kind, "records") if dtype.fields is None else "records"
        raise InputError(f"{label} holds {what}, not plain numbers; save it as an array "
                         "of numbers.")
    count = math.prod(shape)
    if count * dtype.itemsize > MAX_ARRAY_BYTES:
        raise InputError(f"{label} claims {count:,} numbers ({size_words(count * dtype.itemsize)});"
                         f" Mechscope reads arrays up to {size_words(MAX_ARRAY_BYTES)}.")
    return tuple(shape), fortran, dtype


def _read_data(handle: BinaryIO, label: str, shape, fortran: bool, dtype,
               token: Optional[CancelToken] = None) -> np.ndarray:
    """The array's data, read straight into its own memory (no second copy), in chunks
    between which ``token`` is checked (a big file's load can be cancelled)."""
    array = np.empty(math.prod(shape), dtype)
    view, got = memoryview(array).cast("B"), 0
    while got < array.nbytes:
        report(token, got / max(array.nbytes, 1), f"reading {label}")
        n = handle.readinto(view[got:got + CHUNK_BYTES])
        if not n:
            raise InputError(f"{label} is cut short: it holds fewer numbers than its "
                             f"header says; {RESAVE}.")
        got += n
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def read_npz(path: Path, wanted: tuple[tuple[str, ...], ...],
             token: Optional[CancelToken] = None) -> dict[str, np.ndarray]:
    """For each tuple of names in ``wanted``, the first array of the archive with one of
    them (missing ones are left out); every member's header is checked before any data."""
    name = path.name
    try:
        with open_regular(path, what="data file", error=InputError) as handle, \
                zipfile.ZipFile(handle) as archive:
            infos = {i.filename.removesuffix(".npy"): i for i in archive.infolist()}
            total = sum(info.file_size for info in infos.values())
            if total > MAX_ARRAY_BYTES:
                raise InputError(f"{name} would unpack to {size_words(total)}; Mechscope reads "
                                 f"arrays up to {size_words(MAX_ARRAY_BYTES)}.")
            keys = [next((k for k in names if k in infos), None) for names in wanted]
            out = {}
            for key in filter(None, keys):
                label = f"{key}.npy in {name}"
                with archive.open(infos[key]) as member:
                    header = read_header(member, label)
                    out[key] = _read_data(member, label, *header, token)
                    while member.read(1 << 20):  # to the end, so the CRC is checked
                        pass
            return out
    except zipfile.BadZipFile as exc:
        log.info("npz %s: %s", name, exc)
        reason = "a checksum does not match" if "CRC" in str(exc) else "its zip is broken"
        raise InputError(f"{name} is a damaged .npz archive ({reason}); {RESAVE}.") from None
    except (OSError, EOFError, ValueError) as exc:
        log.info("npz %s: %s: %s", name, type(exc).__name__, exc)
        raise InputError(f"{name} is a damaged .npz archive; {RESAVE}.") from None


def npz_names(path: Path) -> list[str]:
    """The array names in an ``.npz`` (for the message when the wanted ones are absent)."""
    try:
        with open_regular(path, what="data file", error=InputError) as handle, \
                zipfile.ZipFile(handle) as archive:
            return sorted(n.removesuffix(".npy") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return []


def check_npy(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` file declares (its data is not read)."""
    with open_regular(path, what="data file", error=InputError) as handle:
        shape, _fortran, dtype = read_header(handle, path.name)
    return shape, dtype
