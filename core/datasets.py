"""Labelled datasets the app evaluates on, and the digits preprocessing.

The handwritten digits (UCI / scikit-learn's ``load_digits``, 1,797 images of 8x8) ship
in ``resources/data/digits.npz`` with a fixed held-out split, so the app needs neither
scikit-learn nor a network at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.paths import resource_path

DIGITS_SIDE = 8
#: The digits are upsampled 2x so the first conv's maps are 16x16 and legible.
MODEL_SIDE = 16
DIGITS_MAX = 16.0


@dataclass(frozen=True)
class Dataset:
    """A labelled evaluation set.

    Attributes
    ----------
    name : str
    inputs : (N, C, H, W) float32 ndarray
        Model-ready inputs.
    labels : (N,) int64 ndarray
    class_names : tuple of str
    display : (N, h, w) float32 ndarray
        What a person should see for each example (the raw 8x8 digit, 0..1).
    """

    name: str
    inputs: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    display: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _linear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation weights (half-pixel centres, edge clamp)."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    lo = np.floor(centres).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = centres - lo
    mat = np.zeros((n_out, n_in))
    mat[np.arange(n_out), lo] += 1 - frac
    mat[np.arange(n_out), hi] += frac
    return mat


def digits_to_model(images: np.ndarray) -> np.ndarray:
    """Digits ``(N, 8, 8)`` in 0..16 -> model inputs ``(N, 1, 16, 16)`` float32 in 0..1."""
    images = np.asarray(images, dtype=np.float64) / DIGITS_MAX
    mat = _linear_matrix(DIGITS_SIDE, MODEL_SIDE)
    up = np.einsum("ij,njk,lk->nil", mat, images, mat)
    return up[:, None].astype(np.float32)


@lru_cache(maxsize=1)
def _digits_npz() -> dict[str, np.ndarray]:
    with np.load(resource_path("data", "digits.npz"), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw digits ``(N, 8, 8) uint8`` and labels ``(N,) int64`` of ``"train"`` or ``"eval"``."""
    data = _digits_npz()
    mask = np.zeros(len(data["labels"]), dtype=bool)
    mask[data["eval_index"]] = True
    if split == "train":
        mask = ~mask
    elif split != "eval":
        raise ValueError(f"Unknown split {split!r}; use 'train' or 'eval'.")
    return data["images"][mask], data["labels"][mask].astype(np.int64)


def load_digits(split: str = "eval") -> Dataset:
    """The shipped digits as a :class:`Dataset` (``"eval"``: the held-out 20 %)."""
    images, labels = digits_split(split)
    inputs = digits_to_model(images)
    for arr in (inputs, labels):
        arr.setflags(write=False)
    display = (images / DIGITS_MAX).astype(np.float32)
    display.setflags(write=False)
    return Dataset(f"digits ({split})", inputs, labels, tuple(str(i) for i in range(10)),
                   display)
