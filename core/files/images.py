"""Turn an image file from disk into a digits-model input, step by step, so the window
can show the user exactly what the model sees."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.datasets import DIGITS_MAX, DIGITS_SIDE, digits_to_model
from core.errors import InputError

#: Far below Pillow's own decompression-bomb limit (~89 Mpx): a digit needs no more.
MAX_PIXELS = 16_000_000
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ConvertedImage:
    """An image file converted to the model's input.

    Attributes
    ----------
    path : str
    original : (h, w) float32 ndarray
        The file as grayscale 0..1 (at most 256 px on a side, for display).
    digit : (8, 8) float32 ndarray
        After cropping, centring and shrinking: what the dataset's digits look like (0..1).
    model_input : (1, 16, 16) float32 ndarray
    steps : tuple of str
        The conversion, in words.
    """

    path: str
    original: np.ndarray
    digit: np.ndarray
    model_input: np.ndarray
    steps: tuple[str, ...]


def _open(path: Path) -> tuple[Image.Image, str]:
    """The decoded image (fully in memory, file closed) and its format name."""
    if not path.is_file():
        raise InputError(f"{path} is not a file.")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path.name} is larger than {MAX_FILE_BYTES >> 20} MB; "
                         "an image of a digit should be far smaller.")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise InputError(f"{path.name} is {img.width}x{img.height} pixels, too "
                                 f"large to be a digit (limit {MAX_PIXELS:,} pixels).")
            img.load()
            return img.copy(), img.format or "image"
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path.name} is not an image Mechscope can read "
                         f"(PNG, JPEG, BMP, GIF, TIFF). {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{path.name} is damaged or truncated and cannot be read: {exc}") from exc


def _grayscale(img: Image.Image, fmt: str) -> tuple[np.ndarray, list[str]]:
    steps = [f"opened {fmt} {img.width}x{img.height}, mode {img.mode}"]
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        # Transparent pixels become white paper, as they look in most viewers.
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
        steps.append("flattened transparency onto white")
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    steps.append("converted to grayscale")
    return gray, steps


def _to_digit(gray: np.ndarray, steps: list[str]) -> np.ndarray:
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray = 1.0 - gray
        steps.append("inverted (dark ink on light paper → light ink on dark, as in the dataset)")
    ink = gray > 0.2 * gray.max() if gray.max() > 0 else np.zeros_like(gray, bool)
    if gray.max() - gray.min() < 0.05 or not ink.any():
        raise InputError("The image is blank: no digit could be found in it.")
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    # The dataset's digits fill about 6 of 8 pixels on their long side: pad to match.
    side = int(max(crop.shape) * DIGITS_SIDE / 6)
    canvas = np.zeros((side, side), np.float32)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    canvas[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
    steps.append(f"cropped to the ink ({crop.shape[1]}x{crop.shape[0]}) and centred")
    small = Image.fromarray(canvas).resize((DIGITS_SIDE, DIGITS_SIDE), Image.BOX)
    digit = np.asarray(small, dtype=np.float32)
    digit = np.clip(digit / max(float(digit.max()), 1e-6), 0, 1)
    steps.append("averaged down to 8x8 and scaled to the dataset's 0..16 range")
    return digit


def load_image(path: str | Path) -> ConvertedImage:
    """Read an image file and convert it to the digits model's input.

    Raises
    ------
    InputError
        Not an image, damaged, too large, or blank.
    """
    path = Path(path)
    img, fmt = _open(path)
    gray, steps = _grayscale(img, fmt)
    return convert_gray(gray, str(path), steps)


def convert_gray(gray: np.ndarray, source: str,
                 steps: list[str] | None = None) -> ConvertedImage:
    """A (h, w) 0..1 grayscale picture (a file, or the drawing canvas) -> model input.

    Raises :class:`InputError` if it is blank.
    """
    steps = list(steps or [f"{gray.shape[1]}x{gray.shape[0]} drawing"])
    path = source
    digit = _to_digit(np.asarray(gray, np.float32), steps)
    model_input = digits_to_model(digit[None] * DIGITS_MAX)[0]
    steps.append("upsampled 2x (bilinear) to the model's 16x16 input")
    preview = Image.fromarray((gray * 255).astype(np.uint8))
    preview.thumbnail((256, 256))
    for arr in (digit, model_input):
        arr.setflags(write=False)
    return ConvertedImage(str(path), np.asarray(preview, np.float32) / 255.0, digit,
                          model_input, tuple(steps))
