"""Frozen values of the language-model views (issue #14): the logit lens, activation
patching and the evaluation tasks. Numpy arrays only, read-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

#: Top tokens kept per logit-lens cell (the click-through list).
LENS_TOP = 10


@dataclass(frozen=True)
class LogitLens:
    """The residual stream at every layer and sub-step, read through the final norm and
    the unembedding, at every position of one prompt.

    Attributes
    ----------
    rows : tuple of str
        The residual-stream site of each row, in forward order: the embedding, then
        per block its stream after attention and after the MLP
        (``block{i}.resid_mid``, ``block{i}.resid_post``). The last row is the model's
        own final stream: its lens is the model's output.
    row_labels : tuple of str
        What each row is, for the axis ("embed", "0 attn", "0 mlp", …).
    tokens : (T,) int64
        The prompt.
    top_ids : (R, T, LENS_TOP) int64
        The most probable next tokens per cell, best first.
    top_probs : (R, T, LENS_TOP) float32
    target : int or None
        The token whose probability ``target_probs`` gives.
    target_probs : (R, T) float32 or None
    ablations : tuple
        What was switched off when the lens was read.
    """

    rows: tuple[str, ...]
    row_labels: tuple[str, ...]
    tokens: np.ndarray
    top_ids: np.ndarray
    top_probs: np.ndarray
    target: Optional[int] = None
    target_probs: Optional[np.ndarray] = None
    ablations: tuple = ()


@dataclass(frozen=True)
class PatchGrid:
    """Activation patching: activations of the clean prompt patched, one cell at a time,
    into the run on the corrupted prompt, scored by the logit difference
    ``logit[clean_answer] - logit[corrupt_answer]`` at the last position.

    Attributes
    ----------
    kind : str
        ``"resid"`` (rows: the residual stream entering each block, ``block{i}.resid_pre``,
        then the final stream; columns: positions) or ``"heads"`` (rows: each block's
        ``attn.heads``; columns: heads).
    rows : tuple of str
        The patched site of each row (all rows of the grid, computed or not).
    row_labels, column_labels : tuple of str
    done : tuple of int
        The rows this value holds results for (a grid streams in a few rows at a time).
    raw : (R, C) float64
        The logit difference after each patch; NaN where not computed.
    score : (R, C) float64
        ``(raw - corrupt_diff) / (clean_diff - corrupt_diff)``: 0 = as corrupted,
        1 = fully restored to the clean run.
    clean_diff, corrupt_diff : float
        The metric on the clean and on the corrupted run, unpatched.
    clean_answer, corrupt_answer : int
    clean_tokens, corrupt_tokens : (T,) int64
    """

    kind: str
    rows: tuple[str, ...]
    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]
    done: tuple[int, ...]
    raw: np.ndarray
    score: np.ndarray
    clean_diff: float
    corrupt_diff: float
    clean_answer: int
    corrupt_answer: int
    clean_tokens: np.ndarray
    corrupt_tokens: np.ndarray


@dataclass(frozen=True)
class LmTask:
    """An evaluation task of a language model the user can switch to."""

    name: str
    title: str
    #: What the score means ("accuracy of the next token in the repeat").
    description: str
    #: The intact model's accuracy on it (measured when first listed).
    baseline: Optional[float] = None
    #: The name of its evaluation set (``ModelInfo.dataset_name`` once it is in use).
    dataset: str = ""
