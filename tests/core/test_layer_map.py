"""The 2-D map of a layer (issue #13): the first two principal components, exact up to
sign, with a sign and a subsample that do not change between runs."""

import numpy as np
import pytest

from core.analysis import layer_map
from core.analysis.layer_map import pca_map


def _structured(m, d, seed=0):
    """Rows with a clear spectrum (variances falling off geometrically) and an offset."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, min(m, d))))
    scales = 0.7 ** np.arange(min(m, d))
    return (rng.standard_normal((m, len(scales))) * scales) @ basis.T + 5.0


def _brute_force(x):
    """(coords, explained) from the eigendecomposition of the covariance matrix."""
    centred = x - x.mean(axis=0)
    w, v = np.linalg.eigh(np.cov(centred, rowvar=False))
    order = np.argsort(w)[::-1]
    return centred @ v[:, order[:2]], w[order[:2]] / w.sum()


@pytest.mark.parametrize("m, d, exact_max", [(300, 30, 500), (40, 200, 500), (150, 120, 50)])
def test_coords_are_the_principal_components_up_to_sign(m, d, exact_max, monkeypatch):
    monkeypatch.setattr(layer_map, "EXACT_MAX", exact_max)  # 50: the randomised SVD
    x = _structured(m, d)
    coords, kept, explained = pca_map(x)
    expected, ratios = _brute_force(x)
    assert coords.shape == (m, 2) and coords.dtype == np.float32
    assert np.array_equal(kept, np.arange(m)) and kept.dtype == np.int64
    signs = np.sign(np.sum(coords * expected, axis=0))
    scale = np.abs(expected).max()
    assert np.allclose(coords, expected * signs, atol=1e-4 * scale)
    assert np.allclose(explained, ratios, rtol=1e-6) and explained.dtype == np.float64


def test_the_same_rows_give_the_same_picture_in_any_order():
    x = _structured(500, 40, seed=3)
    coords, _, _ = pca_map(x)
    again, _, _ = pca_map(x.copy())
    assert np.array_equal(coords, again)
    order = np.random.default_rng(0).permutation(len(x))
    shuffled, _, _ = pca_map(x[order])
    assert np.allclose(shuffled, coords[order], atol=1e-4)  # no sign flip
    assert np.allclose(pca_map(-x)[0], -coords, atol=1e-4)  # same axes: the sign is theirs


def test_many_rows_are_subsampled_with_a_fixed_seed():
    x = _structured(5000, 16, seed=1)
    coords, kept, _ = pca_map(x, n_points_max=1000)
    assert coords.shape == (1000, 2) and len(np.unique(kept)) == 1000
    assert (np.diff(kept) > 0).all() and 0 <= kept[0] and kept[-1] < 5000
    again_coords, again, _ = pca_map(x, n_points_max=1000)
    assert np.array_equal(kept, again) and np.array_equal(coords, again_coords)
    assert not np.array_equal(pca_map(x, n_points_max=1000, seed=1)[1], kept)
    assert np.allclose(coords, _brute_force(x[kept])[0] * np.sign(
        np.sum(coords * _brute_force(x[kept])[0], axis=0)), atol=1e-4 * np.abs(coords).max())


def test_explained_ratios_are_fractions_largest_first():
    for x in (_structured(200, 10), np.random.default_rng(0).standard_normal((300, 50))):
        explained = pca_map(x)[2]
        assert ((0 <= explained) & (explained <= 1)).all()
        assert explained[0] >= explained[1] and explained.sum() <= 1 + 1e-12


def test_degenerate_layers_give_zeros_not_noise():
    one_feature = np.arange(20, dtype=np.float32)[:, None]
    coords, _, explained = pca_map(one_feature)
    assert np.allclose(explained, [1.0, 0.0]) and (coords[:, 1] == 0).all()
    assert np.allclose(np.abs(coords[:, 0]), np.abs(one_feature[:, 0] - 9.5))
    coords, kept, explained = pca_map(np.ones((10, 5)))
    assert (coords == 0).all() and (explained == 0).all() and len(kept) == 10
