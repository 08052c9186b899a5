"""Per-head summary scores that help a newcomer name what an attention head does.

All scores are mean attention weights in [0, 1], averaged over the query positions
where they are defined:

- previous token: weight on the position just before the query;
- induction: weight on the positions right after earlier occurrences of the query's
  own token (where an induction head looks: "what came after me last time?");
- first token: weight on position 0 (the BOS token, a common "resting" place).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadScores:
    """Scores per layer and head.

    Attributes
    ----------
    sites : tuple of str
        The pattern site of each layer, in order.
    previous_token, induction, first_token : (L, H) float64 ndarray
    """

    sites: tuple[str, ...]
    previous_token: np.ndarray
    induction: np.ndarray
    first_token: np.ndarray


def induction_targets(tokens: np.ndarray) -> np.ndarray:
    """(T, T) bool: ``[t, j]`` when ``tokens[j - 1] == tokens[t]`` for ``j - 1 < t``."""
    t = len(tokens)
    same = tokens[:, None] == tokens[None, :]          # same[q, k]: token q == token k
    earlier = np.tril(np.ones((t, t), bool), k=-1)      # k < q
    hits = np.zeros((t, t), bool)
    hits[:, 1:] = (same & earlier)[:, :-1]              # attend to k + 1
    return hits


def scores_for(patterns: np.ndarray, tokens: np.ndarray, valid: np.ndarray) -> tuple:
    """Scores of one layer.

    Parameters
    ----------
    patterns : (N, H, T, T) float32
    tokens : (N, T) int
    valid : (N, T) bool
        Real (not padding) positions.

    Returns
    -------
    (previous_token, induction, first_token), each (H,) float64.
    """
    n, h, t, _ = patterns.shape
    prev_sum, prev_n = np.zeros(h), 0
    ind_sum, ind_n = np.zeros(h), 0
    first_sum = np.zeros(h)
    for i in range(n):
        length = int(valid[i].sum())
        p = patterns[i, :, :length, :length].astype(np.float64)
        if length > 1:
            q = np.arange(1, length)
            prev_sum += p[:, q, q - 1].sum(axis=1)
            first_sum += p[:, q, 0].sum(axis=1)
            prev_n += length - 1
        hits = induction_targets(tokens[i, :length])
        rows = hits.any(axis=1)
        if rows.any():
            ind_sum += (p[:, rows] * hits[rows]).sum(axis=(1, 2))
            ind_n += int(rows.sum())
    return (prev_sum / max(prev_n, 1), ind_sum / max(ind_n, 1), first_sum / max(prev_n, 1))


def head_scores(patterns: dict, tokens: np.ndarray, valid: np.ndarray) -> HeadScores:
    """Scores of every layer: ``patterns`` maps pattern site -> (N, H, T, T)."""
    sites = tuple(patterns)
    per_layer = [scores_for(patterns[s], tokens, valid) for s in sites]
    return HeadScores(sites, *(np.array([layer[k] for layer in per_layer]) for k in range(3)))
