"""Labelled datasets the app evaluates on, and the digits preprocessing.

The handwritten digits (UCI / scikit-learn's ``load_digits``, 1,797 images of 8x8) ship
in ``resources/data/digits.npz`` with a fixed held-out split, so the app needs neither
scikit-learn nor a network at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from core.kinds import ModelKind
from core.paths import resource_path

DIGITS_SIDE = 8
#: The digits are upsampled 2x so the first conv's maps are 16x16 and legible.
MODEL_SIDE = 16
DIGITS_MAX = 16.0


@dataclass(frozen=True)
class Dataset:
    """A labelled evaluation set, of images or of token sequences.

    Attributes
    ----------
    name : str
    inputs : (N, C, H, W) float32 or (N, T) int64 ndarray
        Model-ready inputs.
    labels : (N,) int64 or (N, T) int64 ndarray
        The right answer per example (classification) or per position (next token);
        ``-1`` where a position is not scored.
    class_names : tuple of str
        Names of the output classes (digits, or the vocabulary).
    display : (N, h, w) float32 ndarray or None
        What a person should see for each image example (0..1).
    groups : ndarray, same shape as ``labels``
        The group each scored answer is reported in (``-1``: not scored).
    group_names : tuple of str
    group_label : str
        What the groups are, for the per-group accuracy chart.
    kind : ModelKind
    pad_id : int or None
        The padding token of token datasets (rows are padded to one length).
    texts : tuple of str
        The examples as text, for token datasets' example lists.
    """

    name: str
    inputs: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    display: np.ndarray | None
    groups: np.ndarray
    group_names: tuple[str, ...]
    group_label: str = "class"
    kind: ModelKind = ModelKind.IMAGE
    pad_id: int | None = None
    texts: tuple[str, ...] = ()

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
    names = tuple(str(i) for i in range(10))
    return Dataset(f"digits ({split})", inputs, labels, names, display, labels, names)


def load_induction() -> Dataset:
    """The seeded induction evaluation set: 512 sequences, scored on the repeat."""
    from core.zoo import induction

    tokens, targets, groups = induction.eval_set()
    for arr in (tokens, targets, groups):
        arr.setflags(write=False)
    names = tuple(f"→{k + 1}" for k in range(1, induction.MAX_REPEAT))
    # Group k (0-based) = predicting the (k+2)-th letter of the repeat.
    groups = np.where(groups > 0, groups - 1, -1)
    groups.setflags(write=False)
    texts = tuple("".join(induction.VOCAB[t] for t in row if t < len(induction.LETTERS))
                  for row in tokens)
    return Dataset("induction (eval)", tokens, targets, induction.VOCAB, None, groups,
                   names, "next letter within the repeat", ModelKind.TOKENS, induction.PAD, texts)


def load_sentences() -> Dataset:
    """The shipped evaluation sentences, tokenised for MiniLM and padded."""
    from core.zoo import minilm

    texts = minilm.eval_sentences()
    rows = [minilm.encode(t) for t in texts]
    tokens = np.full((len(rows), max(len(r) for r in rows)), minilm.PAD, np.int64)
    for i, row in enumerate(rows):
        tokens[i, :len(row)] = row
    index = np.arange(len(rows), dtype=np.int64)
    for arr in (tokens, index):
        arr.setflags(write=False)
    return Dataset("sentences (eval)", tokens, index, minilm.vocab(), None, index,
                   tuple(str(i) for i in range(len(rows))),
                   "sentence (cosine to the intact embedding)", ModelKind.EMBEDDING, minilm.PAD,
                   tuple(texts))


def load_smollm() -> Dataset:
    """SmolLM2's evaluation set: repeated random word pieces, scored on the repeat
    (see :func:`core.zoo.smollm.induction_set`)."""
    from core.zoo import smollm

    tokens, targets, groups = smollm.induction_set()
    for arr in (tokens, targets, groups):
        arr.setflags(write=False)
    # The first copy, decoded as the model reads it: the second adds nothing to read.
    half = 1 + (tokens.shape[1] - 1) // 2
    texts = tuple(f"{smollm.decode(row[1:half]).strip()} … (repeated)" for row in tokens)
    return Dataset("repeated random tokens (eval)", tokens, targets, smollm.vocab(), None,
                   groups, smollm.GROUP_NAMES, "position in the repeat", ModelKind.TOKENS,
                   None, texts)


#: The evaluation datasets of the built-in models, by the name a :class:`ZooEntry`
#: gives (loaded on demand: the token sets need their model's vocabulary).
DATASETS = {"digits": lambda: load_digits("eval"), "induction": load_induction,
            "sentences": load_sentences, "smollm": load_smollm}


def load_dataset(name: str) -> Dataset:
    """The evaluation dataset ``name`` of :data:`DATASETS` (``KeyError`` if unknown)."""
    return DATASETS[name]()
