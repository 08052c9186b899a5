"""Hostile and malformed evaluation data and image files, with what the user must be
told for each (issue #10). Like :mod:`tests.hostile.corpus`, generated at test time.

``build_data`` files are opened with ``load_user_data`` for the digits model (ten
classes, input 1x16x16); ``build_images`` files with ``load_image`` and ``probe_image``.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

OK = "<opens>"


def _npy_header(shape: tuple, descr: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()  # the magic string included


def _npz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    return buf.getvalue()


def build_data(out: Path) -> list[tuple[str, str]]:
    out.mkdir(parents=True, exist_ok=True)
    manifest: list[tuple[str, str]] = []

    def add(name: str, data: bytes | str, expect: str) -> None:
        target = out / name
        target.write_bytes(data.encode() if isinstance(data, str) else data)
        manifest.append((name, expect))

    row = ",".join(["0"] * 256)
    good_x, good_y = np.zeros((3, 256), np.float32), np.array([1, 2, 3])
    add("good.npz", _npz({"x.npy": _npy(good_x), "y.npy": _npy(good_y)}), OK)
    add("good.csv", "\n".join(f"{row},{k}" for k in (1, 2, 3)), OK)
    add("fortran.npz", _npz({"x.npy": _npy(np.asfortranarray(np.zeros((256, 3)).T)),
                             "y.npy": _npy(good_y)}), OK)
    add("objects.npz", _npz({"x.npy": _npy(np.array([{"a": 1}], dtype=object)),
                             "y.npy": _npy([0])}), "holds Python objects")
    add("no_arrays.npz", _npz({"readme.txt": b"hello"}), "a ZIP archive with no NumPy arrays")
    # Raw errors of the csv module, numpy and MemoryError, before issue #10.
    add("long_field.csv", "1," + "9" * 131_073 + ",3\n", "line 1, is longer than")
    add("nul_byte.csv", f"{row},1\n{row},\x002\n", "line 2: .* is not a number")
    add("too_wide.csv", ",".join(["1"] * 5000) + "\n", "line 1, has 5,000 values")
    add("too_many_rows.csv", "1\n" * 200_001, "more than 200,000 rows")
    add("float_labels.csv", f"{row},3.7\n{row},1\n", "labels must be whole numbers.*3.7")
    add("nan_labels.csv", f"{row},nan\n", "labels must be whole numbers")
    add("inf_inputs.csv", f"{row[:-1]}inf,1\n", "not finite numbers")
    huge = _npy_header((10 ** 12,))
    add("huge_claim.npz", _npz({"x.npy": huge + b"\0" * 64, "y.npy": _npy([1])}),
        "x.npy in huge_claim.npz claims 1,000,000,000,000 numbers \\(3.6 TB\\)")
    add("huge_claim.npy", huge + b"\0" * 64, "claims 1,000,000,000,000 numbers")
    add("float_labels.npz", _npz({"x.npy": _npy(np.zeros((2, 256))),
                                  "y.npy": _npy([3.7, 1.0])}), "labels must be whole numbers")
    add("text_labels.npz", _npz({"x.npy": _npy(np.zeros((2, 256))),
                                 "y.npy": _npy(["cat", "dog"])}),
        "y.npy in text_labels.npz holds text, not plain numbers")
    add("short_data.npz", _npz({"x.npy": _npy_header((100, 256)) + b"\0" * 64,
                                "y.npy": _npy(np.zeros(100))}), "is cut short")
    add("bad_npy_header.npz", _npz({"x.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': ",
                                    "y.npy": _npy([1])}), "header cannot be read")
    add("complex.npz", _npz({"x.npy": _npy(np.zeros((2, 256), complex)),
                             "y.npy": _npy([1, 2])}), "holds complex numbers, not plain")
    crc = bytearray(_npz({"x.npy": _npy(np.ones((4, 256), np.float32)),
                          "y.npy": _npy([1, 2, 3, 4])}))
    crc[200] ^= 0x40  # inside x.npy's data; the stored checksum is left as it was
    add("bad_crc.npz", bytes(crc), "damaged .npz archive \\(a checksum does not match\\)")
    # Things that are not files at all: refused from os.stat, never opened.
    os.mkfifo(out / "data.csv")
    manifest.append(("data.csv", "data.csv is a named pipe, not a file"))
    nested = out / "pipes"
    (nested / "3").mkdir(parents=True)
    os.mkfifo(nested / "3" / "digit.png")
    manifest.append(("pipes", "pipes has no image files in its class folders"))
    return manifest


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (width, height), 255).save(buf, format="PNG")
    return buf.getvalue()


def build_images(out: Path) -> list[tuple[str, str]]:
    out.mkdir(parents=True, exist_ok=True)
    manifest: list[tuple[str, str]] = []

    def add(name: str, data: bytes, expect: str) -> None:
        (out / name).write_bytes(data)
        manifest.append((name, expect))

    # Decoding and padding this to a square asked numpy for 5.94 GiB before issue #10.
    add("needle.png", _png(1, 30000), "1x30000 pixels, one side more than 20 times")
    add("strip.png", _png(30000, 2), "30000x2 pixels, one side more than 20 times")
    add("huge.png", _png(9000, 9000), "9000x9000 pixels, too large")
    good = _png(40, 40)
    add("truncated.png", good[: len(good) // 2], "damaged or cut short|not an image")
    add("notes.png", b"just some text\n", "not an image Mechscope can read")
    os.mkfifo(out / "digit.png")
    manifest.append(("digit.png", "digit.png is a named pipe, not a file"))
    (out / "photos.png").mkdir()
    manifest.append(("photos.png", "photos.png is a folder, not a file"))
    return manifest
