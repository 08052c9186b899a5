"""A 2-D map of a layer (issue #13): its outputs over the evaluation set (one row per
example, or per scored position for token models) projected on their first two
principal components, so clusters the layer forms can be seen and coloured by class.

PCA only. UMAP is not included: its one well-kept implementation (umap-learn) needs
numba, too heavy a dependency for one picture; t-SNE's picture changes with its
perplexity and seed in ways that are easy to over-read.
"""

from __future__ import annotations

import numpy as np

#: Up to this many features (or rows) the principal axes are exact (an eigendecomposition
#: of the smaller Gram matrix); beyond, a seeded randomised SVD (7 power iterations)
#: finds the leading two, to float precision when they stand out from the rest.
EXACT_MAX = 500


def pca_map(rows: np.ndarray, n_points_max: int = 3000,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coords (M', 2) float32, kept row indices (M',) int64, explained (2,) float64).

    ``rows`` (M, D): one point per row. When M > ``n_points_max`` a fixed-seed
    subsample of ``n_points_max`` rows (sorted) is mapped, otherwise every row. The
    coordinates are the centred rows projected on their two leading principal axes;
    each axis's sign is fixed (its largest-magnitude loading is positive) so the picture
    does not flip between runs. ``explained`` is the fraction of the (kept rows')
    variance along each axis, decreasing; an axis the data does not have (D == 1,
    one distinct point) has coordinate 0 and ratio 0.
    """
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise ValueError(f"rows must be (M, D), got shape {rows.shape}")
    if n_points_max < 1:
        raise ValueError(f"n_points_max must be at least 1, got {n_points_max}")
    m = rows.shape[0]
    if m > n_points_max:
        kept = np.sort(np.random.default_rng(seed).choice(m, n_points_max, replace=False))
    else:
        kept = np.arange(m)
    kept = kept.astype(np.int64)
    x = rows[kept].astype(np.float64)
    x -= x.mean(axis=0) if len(x) else 0.0
    total = float(np.einsum("ij,ij->", x, x))
    coords = np.zeros((len(x), 2), np.float64)
    explained = np.zeros(2, np.float64)
    if total <= 0.0 or len(x) < 2:
        return coords.astype(np.float32), kept, explained
    axes, power = _leading_axes(x, seed)  # (D, k), (k,) with k <= 2
    k = axes.shape[1]
    # deterministic sign: the largest-|loading| entry of each axis is positive
    biggest = axes[np.argmax(np.abs(axes), axis=0), np.arange(k)]
    axes = axes * np.where(biggest < 0, -1.0, 1.0)
    coords[:, :k] = x @ axes
    explained[:k] = np.clip(power / total, 0.0, 1.0)
    return coords.astype(np.float32), kept, explained


def _leading_axes(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to two unit principal axes (D, k) of centred ``x`` and their sums of squares,
    largest first; axes with (numerically) no variance are left out."""
    m, d = x.shape
    if min(m, d) <= EXACT_MAX:
        if d <= m:
            w, v = np.linalg.eigh(x.T @ x)
            order = np.argsort(w)[::-1][:2]
            w, v = w[order], v[:, order]
        else:
            w, u = np.linalg.eigh(x @ x.T)
            order = np.argsort(w)[::-1][:2]
            w, u = w[order], u[:, order]
            v = x.T @ (u / np.sqrt(np.maximum(w, np.finfo(float).tiny)))
    else:
        from sklearn.utils.extmath import randomized_svd
        _, s, vt = randomized_svd(x, 2, n_iter=7, random_state=seed)
        w, v = s ** 2, vt.T
    keep = w > w[0] * 1e-12
    v = v[:, keep]
    v /= np.linalg.norm(v, axis=0)
    return v, w[keep]
