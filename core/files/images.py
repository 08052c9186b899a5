"""Turn an image file from disk into a digits-model input, step by step, so the window
can show the user exactly what the model sees."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.datasets import DIGITS_MAX, DIGITS_SIDE, digits_to_model
from core.errors import InputError
from core.files.guard import check_path, open_regular

log = logging.getLogger(__name__)

#: Far below Pillow's own decompression-bomb limit (~89 Mpx): a digit needs no more.
MAX_PIXELS = 16_000_000
#: A phone photo (4032x3024, 8000x6000 cropped) passes; a 1x30000 strip does not.
MAX_SIDE = 8192
MAX_ASPECT = 20
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Larger crops are shrunk to this long side before being centred on a square canvas.
FIT_WORKING_SIDE = 256


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
    """The decoded image (fully in memory, file closed) and its format name.

    Its size is read from the header and checked before a single pixel is decoded."""
    info = check_path(path, what="image file", error=InputError)
    if info.st_size > MAX_FILE_BYTES:
        raise InputError(f"{path.name} is larger than {MAX_FILE_BYTES >> 20} MB; "
                         "an image of a digit should be far smaller.")
    try:
        with open_regular(path, what="image file", error=InputError) as handle, \
                Image.open(handle) as img:
            _check_size(path.name, img.width, img.height)
            img.load()
            return img.copy(), img.format or "image"
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        log.info("open %s: %s: %s", path.name, type(exc).__name__, exc)
        raise InputError(f"{path.name} is not an image Mechscope can read; save it as "
                         "PNG, JPEG, BMP, GIF or TIFF.") from None
    except MemoryError:
        raise InputError(f"{path.name} needs more memory to decode than is free; save a "
                         "smaller picture of the digit.") from None
    except Exception as exc:  # decoders raise many types for damaged data
        log.info("decode %s: %s: %s", path.name, type(exc).__name__, exc)
        raise InputError(f"{path.name} is damaged or cut short and cannot be decoded; "
                         "re-save or re-download it.") from None


def _check_size(name: str, width: int, height: int) -> None:
    """Refuse from the header's size alone: decoding, or padding to a square, a huge or
    needle-thin picture would take gigabytes for what becomes 8x8 pixels."""
    if width < 1 or height < 1:
        raise InputError(f"{name} says it is {width}x{height} pixels, so it is damaged; "
                         "re-save it.")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise InputError(f"{name} is {width}x{height} pixels, one side more than "
                         f"{MAX_ASPECT} times the other, so it is not a picture of one "
                         "digit; crop it around the digit.")
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise InputError(f"{name} is {width}x{height} pixels, too large to be a picture "
                         f"of a digit (at most {MAX_SIDE} pixels a side and "
                         f"{MAX_PIXELS:,} pixels); crop or shrink it.")


def _grayscale(img: Image.Image, fmt: str) -> tuple[np.ndarray, list[str]]:
    steps = [f"opened {fmt} {img.width}x{img.height}, mode {img.mode}"]
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        # Transparent pixels become white paper, as they look in most viewers.
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
        steps.append("flattened transparency onto white")
    if img.mode.startswith(("I", "F")):  # Pillow's own conversion clips these at 255
        values = np.asarray(img, dtype=np.float32)
        top = float(values.max()) if values.size else 1.0
        if img.mode.startswith("I"):
            top = 65535.0 if img.mode.startswith("I;16") or top > 255 else 255.0
        gray = np.clip(values / max(top, 1.0), 0.0, 1.0)
    else:
        gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    steps.append("converted to grayscale")
    return gray, steps


def _to_digit(gray: np.ndarray, steps: list[str]) -> np.ndarray:
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if np.median(border) > 0.5:
        gray, border = 1.0 - gray, 1.0 - border
        steps.append("inverted (dark ink on light paper → light ink on dark, as in the dataset)")
    # The border is mostly paper: its level is taken off, and its noise decides how
    # faint a pixel may be and still count as ink (clean pictures keep faint edges).
    paper = float(np.median(border))
    contrast = float(gray.max()) - paper
    if contrast < 0.05:
        raise InputError("The image is blank: no digit could be found in it.")
    if paper > 0.02:
        steps.append("took off the paper's tone")
    gray = np.clip((gray - paper) / contrast, 0.0, 1.0)
    noise = float(np.median(np.abs(border - paper))) / contrast
    ink = gray > min(0.2, 0.05 + 6 * noise)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    side = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    r0, r1 = _span(rows[0], rows[-1] + 1, side, gray.shape[0])
    c0, c1 = _span(cols[0], cols[-1] + 1, side, gray.shape[1])
    crop = np.ascontiguousarray(gray[r0:r1, c0:c1])
    steps.append(f"cropped to the ink ({cols[-1] - cols[0] + 1}x{rows[-1] - rows[0] + 1})"
                 " and centred")
    digit = _fit(crop)
    digit = np.clip(digit / max(float(digit.max()), 1e-6), 0, 1)
    steps.append("averaged down to 8x8, the ink filling all 8 pixels on its long side, "
                 "and scaled to the dataset's 0..16 range")
    return digit


def _span(first: int, end: int, side: int, total: int) -> tuple[int, int]:
    """The part of one axis to keep: the ink's extent on the long axis. On the short
    axis, a square window centred on the ink and kept inside the picture, so a picture
    framed tightly like the dataset's own (a held-out digit saved as PNG) keeps its
    framing exactly; if the picture is too narrow for the window, just the ink, to be
    centred on the canvas."""
    if end - first == side or total < side:
        return first, end
    start = first - _centred(side, end - first)
    start = min(max(start, 0), total - side)
    return start, start + side


def _centred(long_side: int, short: int) -> int:
    """Where the short side starts on the canvas: centred, but snapped to whole output
    pixels, so an upscaled 8x8 digit comes back sharp rather than smeared over a half
    pixel. Halves round towards the far side, as the dataset's digits do."""
    cell = long_side / DIGITS_SIDE
    cells = np.floor((long_side - short) / 2 / cell + 0.5)
    return int(min(round(cells * cell), long_side - short))


def _fit(crop: np.ndarray) -> np.ndarray:
    """``crop`` shrunk, aspect kept, so its long side fills the 8x8 square exactly and
    its short side is centred — as every held-out digit of the dataset is drawn."""
    long_side = max(crop.shape)
    if long_side > FIT_WORKING_SIDE:  # shrink first: the square canvas stays small
        scale = FIT_WORKING_SIDE / long_side
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.BOX), np.float32)
        long_side = max(crop.shape)
    canvas = np.zeros((long_side, long_side), np.float32)
    top, left = (_centred(long_side, n) for n in crop.shape)
    canvas[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
    small = Image.fromarray(canvas).resize((DIGITS_SIDE, DIGITS_SIDE), Image.BOX)
    return np.asarray(small, dtype=np.float32)


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
    gray = np.asarray(gray, np.float32)
    if gray.ndim != 2 or 0 in gray.shape or not np.isfinite(gray).all():
        raise InputError(f"{Path(source).name} is not a picture Mechscope can convert: it "
                         "needs rows and columns of brightness values.")
    steps = list(steps or [f"{gray.shape[1]}x{gray.shape[0]} drawing"])
    path = source
    try:
        digit = _to_digit(gray, steps)
    except InputError:  # name what was blank: a file, or the drawing
        raise InputError(f"{Path(source).name} is blank: no digit could be found in it; "
                         "draw or photograph the digit with clear ink.") from None
    model_input = digits_to_model(digit[None] * DIGITS_MAX)[0]
    steps.append("upsampled 2x (bilinear) to the model's 16x16 input")
    preview = Image.fromarray((gray * 255).astype(np.uint8))
    preview.thumbnail((256, 256))
    for arr in (digit, model_input):
        arr.setflags(write=False)
    return ConvertedImage(str(path), np.asarray(preview, np.float32) / 255.0, digit,
                          model_input, tuple(steps))


def load_picture(path: str | Path, channels: int, height: int, width: int) -> np.ndarray:
    """An image file as a model's own input (channels, height, width) float32 in 0..1:
    grayscale for one channel, RGB for three, resized (bilinear) with no cropping — the
    user's own pictures are taken as they are, unlike a digit, which is found and
    centred. Transparency becomes white. Raises :class:`InputError` like ``load_image``."""
    path = Path(path)
    img, fmt = _open(path)
    if channels == 1:
        gray, _ = _grayscale(img, fmt)
        resized = Image.fromarray(gray.astype(np.float32)).resize(
            (width, height), Image.BILINEAR)
        out = np.asarray(resized, np.float32)[None]
    elif channels == 3:
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img.convert("RGBA"))
        rgb = img.convert("RGB").resize((width, height), Image.BILINEAR)
        out = np.moveaxis(np.asarray(rgb, np.float32) / 255.0, -1, 0)
    else:
        raise InputError(f"{path.name}: Mechscope converts pictures to 1 (grayscale) or 3 "
                         f"(RGB) channels, not {channels}.")
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), np.float32)
