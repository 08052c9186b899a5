"""Image files become model inputs, or a readable InputError — never a crash."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.errors import InputError
from core.files.images import load_image


def _digit(mode: str, size=(90, 120), ink="black", paper="white") -> Image.Image:
    if mode == "P":  # a palette image, as GIFs and some PNGs are
        return _digit("RGB", size).convert("P")
    img = Image.new(mode, size, paper)
    ImageDraw.Draw(img).ellipse([20, 20, size[0] - 20, size[1] - 20], outline=ink, width=10)
    return img


@pytest.mark.parametrize("mode,ink,paper", [
    ("RGB", "black", "white"), ("L", 0, 255), ("RGBA", (0, 0, 0, 255), (0, 0, 0, 0)),
    ("P", 0, 255), ("L", 255, 0),
])
def test_any_mode_and_size_converts(tmp_path, mode, ink, paper):
    path = tmp_path / f"digit_{mode}.png"
    _digit(mode, ink=ink, paper=paper).save(path)
    converted = load_image(path)
    assert converted.model_input.shape == (1, 16, 16)
    assert converted.model_input.dtype == np.float32
    assert 0.0 <= converted.model_input.min() and converted.model_input.max() <= 1.0
    # Ink ends up bright on a dark background, as in the dataset.
    assert converted.digit[0, 0] < 0.2 and converted.digit.max() == pytest.approx(1.0)


def test_dark_on_light_is_inverted_and_said(tmp_path):
    path = tmp_path / "zero.jpg"
    _digit("RGB").save(path)
    steps = " ".join(load_image(path).steps)
    assert "inverted" in steps and "8x8" in steps and "16x16" in steps


def test_blank_image_is_refused(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (40, 40), 255).save(path)
    with pytest.raises(InputError, match="blank"):
        load_image(path)


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some text")
    with pytest.raises(InputError, match="not an image"):
        load_image(path)


def test_truncated_png_is_damaged(tmp_path):
    buf = io.BytesIO()
    _digit("L").save(buf, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(InputError, match="damaged|not an image"):
        load_image(path)


def test_decompression_bomb_header_is_refused(tmp_path):
    # A valid PNG header claiming 60000x60000 pixels, with almost no data behind it.
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(
            ">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) \
        + chunk(b"IEND", b"")
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(InputError, match="too large|not an image"):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope.png does not exist"):
        load_image(tmp_path / "nope.png")
