"""What a file really is, read from its first bytes — never from its extension.

A model file can be a torch zip checkpoint, a TorchScript archive, a legacy pickle, a
safetensors file, an ONNX protobuf, a Keras model (a ``.keras`` zip or HDF5), or
something that is not a model at all: an HTML page saved from a browser, a Git LFS
pointer, Python source. Each gets a name the user recognises.
"""

from __future__ import annotations

import errno
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import MechscopeError
from core.files.guard import kind_of, open_regular

HEAD_BYTES = 512
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: Keras names its model in an attribute of the file's root group, which HDF5 writes
#: near the start; this many bytes are searched for the name.
HDF5_LOOK_BYTES = 64 * 1024
IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG image", b"\xff\xd8\xff": "JPEG image",
               b"GIF8": "GIF image", b"BM": "BMP image", b"II*\x00": "TIFF image",
               b"MM\x00*": "TIFF image"}


@dataclass(frozen=True)
class Sniffed:
    """``kind``: a short machine name; ``description``: what to tell the user."""

    kind: str
    description: str


def _zip_kind(handle) -> Sniffed:
    try:
        with zipfile.ZipFile(handle) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return Sniffed("broken-zip", "a damaged ZIP archive")
    if any(n.endswith("constants.pkl") or "/code/" in n for n in names):
        return Sniffed("torchscript", "a TorchScript archive (code, not just weights)")
    if any(n.endswith("data.pkl") for n in names):
        return Sniffed("torch-zip", "a PyTorch checkpoint")
    if names and all(n.endswith(".npy") for n in names):
        return Sniffed("npz", "a NumPy .npz archive")
    if "config.json" in names and ("metadata.json" in names or
                                   any(n.startswith("model.weights") for n in names)):
        return Sniffed("keras", "a Keras model (.keras)")
    return Sniffed("zip", "a ZIP archive that is not a PyTorch checkpoint")


def _unreadable(exc: OSError) -> Sniffed:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Sniffed("unreadable", "a file you do not have permission to read")
    return Sniffed("unreadable", "a file that cannot be read right now (is its disk "
                                 "still connected?)")


def sniff(path: str | Path) -> Sniffed:
    """Identify ``path`` by content. Never raises for an unreadable file: says so.

    A folder, pipe, socket or device is named from ``os.stat`` and never opened
    (``kind`` "folder", "pipe", "socket", "device"; "missing" if there is nothing)."""
    path = Path(path)
    try:
        kind, words = kind_of(os.stat(path).st_mode)
    except FileNotFoundError:
        return Sniffed("missing", "a file that does not exist")
    except OSError as exc:
        return _unreadable(exc)
    if kind != "file":
        return Sniffed(kind, f"{words}, not a file")
    try:
        with open_regular(path) as handle:
            head = handle.read(HEAD_BYTES)
            if head.startswith(b"PK\x03\x04"):
                return _zip_kind(handle)
            if head.startswith(HDF5_MAGIC):
                if b"model_config" in head + handle.read(HDF5_LOOK_BYTES):
                    return Sniffed("keras-h5", "a Keras model (HDF5)")
                return Sniffed("hdf5", "an HDF5 file")
    except MechscopeError:  # swapped for a pipe between the two looks
        return Sniffed("unreadable", "a file that stopped being a regular file while it "
                                     "was read")
    except OSError as exc:
        return _unreadable(exc)
    if not head:
        return Sniffed("empty", "an empty file")
    if head.startswith(b"\x93NUMPY"):
        return Sniffed("npy", "a NumPy .npy array")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return Sniffed("pickle", "a legacy PyTorch pickle")
    for magic, name in IMAGE_MAGIC.items():
        if head.startswith(magic):
            return Sniffed("image", f"a {name}")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "a WebP image")
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1:
        return Sniffed("safetensors", "a safetensors file")
    text = head.decode("utf-8", errors="replace").lstrip().lower()
    if text.startswith("version https://git-lfs"):
        return Sniffed("git-lfs", "a Git LFS pointer (the real file was never downloaded: "
                                  "run `git lfs pull`)")
    if text.startswith(("<!doctype html", "<html", "<?xml")) or "<html" in text[:200]:
        return Sniffed("html", "a web page (probably saved from a download link)")
    if any(text.startswith(w) or f"\n{w}" in text for w in ("import ", "from ", "def ",
                                                            "class ", "#!")):
        return Sniffed("python", "Python source code")
    if head[:1] == b"\x08" and b"\x12" in head[:16]:
        return Sniffed("onnx", "an ONNX model")
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return Sniffed("text", "a text file")
    return Sniffed("unknown", "a file in a format Mechscope does not know")
