"""Linear probes, one per layer (issue #13): how well can a linear read-out of a layer's
output over the dataset tell a question's answer (the digit, the next letter, "is this
position in the repeated half")?

For every layer a multinomial logistic regression (scikit-learn ``LogisticRegression``,
standardised features, L2, fixed seed) is fitted on the training examples and scored on
held-out ones. The honesty control is the same probe fitted on shuffled training labels
and scored on the same held-out rows: a wide layer can memorise anything, so a probe is
only evidence of what the layer represents when it beats both ``chance`` and its
shuffled twin by far.

Pure numpy / scikit-learn on arrays: :func:`layer_rows` turns a captured layer output
into probe features, :func:`probe_layers` fits and scores.
"""

from __future__ import annotations

import warnings
from typing import Callable, Optional, Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from core.jobs import check, report
from core.unit_values import ProbeReport

#: Inverse L2 strength on standardised features (scikit-learn's ``C``).
C = 1.0
#: Gradient tolerance and iteration cap of the L-BFGS fit; a probe that does not reach
#: the tolerance is named in the report's notes. 1e-4 moves no held-out accuracy on the
#: shipped models by more than a point against 1e-5, and fits the transformer 1.5x faster.
TOL = 1e-4
MAX_ITER = 2000
#: Layers with more (non-constant) features than this, and more training rows than this,
#: are probed on their leading principal components (of the training rows), this many.
MAX_FEATURES = 4096
PCA_COMPONENTS = 1024


def split_examples(n_examples: int, seed: int = 0,
                   test_fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) example indices, sorted int64, from a fixed-seed permutation of
    ``range(n_examples)``; ``round(n_examples * test_fraction)`` (at least 1) held out.
    """
    if n_examples < 2:
        raise ValueError(f"need at least 2 examples to split, got {n_examples}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n_test = min(max(round(n_examples * test_fraction), 1), n_examples - 1)
    order = np.random.default_rng(seed).permutation(n_examples)
    return np.sort(order[n_test:]).astype(np.int64), np.sort(order[:n_test]).astype(np.int64)


def layer_rows(acts: np.ndarray, unit_axis: int,
               positions: Optional[np.ndarray] = None) -> np.ndarray:
    """Probe features (M, D) float32 from a layer's output ``acts`` (N, *shape).

    ``positions`` None (image models): one row per example, the whole output flattened.
    ``positions`` (M, 2) int of (example, position) pairs (sequence models): the row is
    the output at that position. The position axis is the first axis of ``shape`` that
    is not the unit axis: a (T, F) site (``unit_axis`` 1) gives ``acts[e, p, :]``; a
    (heads, T, D) site (``unit_axis`` 0) gives ``acts[e, :, p, :]`` flattened (the heads
    concatenated); a (heads, T, T) attention pattern gives the query row
    ``acts[e, :, p, :]`` flattened.
    """
    acts = np.asarray(acts)
    if acts.ndim < 2:
        raise ValueError(f"need (N, *shape) activations, got shape {acts.shape}")
    if positions is None:
        return np.ascontiguousarray(acts.reshape(acts.shape[0], -1), dtype=np.float32)
    positions = np.asarray(positions)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise ValueError(f"positions must be (M, 2) (example, position), got {positions.shape}")
    position_axis = 1 if unit_axis == 0 and acts.ndim >= 3 else 0
    moved = np.moveaxis(acts, position_axis + 1, 1)
    picked = moved[positions[:, 0].astype(np.intp), positions[:, 1].astype(np.intp)]
    return np.ascontiguousarray(picked.reshape(len(positions), -1), dtype=np.float32)


def probe_layers(task: str, sites: Sequence[str], rows: Callable[[str], np.ndarray],
                 labels: np.ndarray, examples: np.ndarray, classes: tuple[str, ...] = (),
                 seed: int = 0, token=None) -> ProbeReport:
    """Fit and score one linear probe per site for ``task``.

    ``rows(site)`` gives (M, D) features aligned with ``labels`` (M,) int, the class to
    predict, and ``examples`` (M,), the example each row comes from. Examples (not
    rows) are split with :func:`split_examples`, so the positions of one sequence are
    never on both sides. ``chance`` is the held-out accuracy of always answering the
    most frequent training class. Progress and cancellation between sites via
    ``token`` (:class:`core.jobs.CancelToken` or None).
    """
    sites = tuple(sites)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    examples = np.asarray(examples).astype(np.int64).reshape(-1)
    if len(labels) != len(examples):
        raise ValueError(f"{len(labels)} labels but {len(examples)} example indices")
    unique = np.unique(examples)
    train_ex, test_ex = split_examples(len(unique), seed)
    train = np.flatnonzero(np.isin(examples, unique[train_ex]))
    test = np.flatnonzero(np.isin(examples, unique[test_ex]))
    values, counts = np.unique(labels[train], return_counts=True)
    majority = values[np.argmax(counts)]
    chance = float(np.mean(labels[test] == majority))
    y_shuffled = np.random.default_rng(seed).permutation(labels[train])

    held_out, train_acc, shuffled, dims = [], [], [], []
    notes: list[str] = []
    for i, site in enumerate(sites):
        report(token, i / max(len(sites), 1), f"probing {site}…")
        x = np.asarray(rows(site))
        if x.ndim != 2 or len(x) != len(labels):
            raise ValueError(f"{site}: rows must be ({len(labels)}, D), got {x.shape}")
        # The matrices are small (rows x a few hundred after _features): more BLAS
        # threads only add synchronisation, and on a busy machine their spin-waits made
        # the fits 30x slower. Not around rows(site), which may run the model.
        with threadpool_limits(limits=1, user_api="blas"):
            scores, kept, site_notes = _probe_site(x, train, test, y_shuffled, labels,
                                                   majority, seed, token)
        held_out.append(scores[0])
        train_acc.append(scores[1])
        shuffled.append(scores[2])
        dims.append(kept)
        notes.extend(f"{site}: {note}" for note in site_notes)
        check(token)
    report(token, 1.0, "probes done")
    return ProbeReport(
        task=task, sites=sites,
        held_out=_frozen(held_out), train=_frozen(train_acc), shuffled=_frozen(shuffled),
        dims=_frozen(dims, np.int64), chance=chance,
        n_train=len(train), n_test=len(test),
        classes=tuple(classes), notes=tuple(notes))


def _probe_site(x, train, test, y_shuffled, labels, majority, seed,
                token) -> tuple[tuple[float, float, float], int, list[str]]:
    """((held-out, train, shuffled-control held-out) accuracy, features used, notes)."""
    y_train, y_test = labels[train], labels[test]
    features, kept, notes = _features(x, train, seed)
    if kept == 0 or len(np.unique(y_train)) < 2:
        # nothing to read out (or one class only): the probe answers the majority
        notes.append(("every feature is constant" if kept == 0 else
                      "one class in the training rows") + ", the probe answers the majority")
        chance = float(np.mean(y_test == majority))
        return (chance, float(np.mean(y_train == majority)), chance), kept, notes
    probe, late = _fit(features[train], y_train, seed)
    check(token)
    control, late_control = _fit(features[train], y_shuffled, seed)
    if late or late_control:
        which = "probe and control" if late and late_control else \
            "probe" if late else "shuffled control"
        notes.append(f"{which} stopped at {MAX_ITER} iterations short of tolerance {TOL:g}")
    return (float(probe.score(features[test], y_test)),
            float(probe.score(features[train], y_train)),
            float(control.score(features[test], y_test))), kept, notes


def _features(x: np.ndarray, train: np.ndarray,
              seed: int) -> tuple[np.ndarray, int, list[str]]:
    """Standardised features for the probe, the count of non-constant columns, notes.

    Columns constant over the training rows are dropped. When there are more columns
    than training rows the features are rotated into the span of the (centred,
    standardised) training rows: an L2 logistic regression's weights lie in that span,
    so the fit and every score are unchanged (same optimum), only much faster. Layers
    still wider than ``MAX_FEATURES`` keep their ``PCA_COMPONENTS`` leading principal
    components.
    """
    dtype = np.float64 if x.size <= 1 << 25 else np.float32
    xt = x[train]
    varying = np.flatnonzero(xt.max(axis=0) > xt.min(axis=0))
    notes = []
    if len(varying) < x.shape[1]:
        notes.append(f"{x.shape[1] - len(varying)} of {x.shape[1]} features constant, dropped")
    if len(varying) == 0:
        return np.zeros((len(x), 0), dtype), 0, notes
    x = x[:, varying].astype(dtype, copy=False) if len(varying) < x.shape[1] \
        else x.astype(dtype, copy=False)
    xt = x[train]
    mean = xt.mean(axis=0)
    scale = xt.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    d, n = z.shape[1], len(train)
    if d > n and n <= MAX_FEATURES:
        # an orthonormal basis of the training rows' span from their (n, n) Gram matrix
        zt = z[train]
        w, u = np.linalg.eigh(zt @ zt.T)
        keep = w > w[-1] * 1e-10
        z = (z @ zt.T) @ (u[:, keep] / np.sqrt(w[keep]))
    elif d > MAX_FEATURES:
        from sklearn.utils.extmath import randomized_svd
        _, _, vt = randomized_svd(z[train], PCA_COMPONENTS, random_state=seed)
        z = z @ vt.T
        notes.append(f"{d} features probed on their {PCA_COMPONENTS} leading principal "
                     f"components")
    return np.ascontiguousarray(z), len(varying), notes


def _fit(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[LogisticRegression, bool]:
    """The fitted probe and whether it stopped at ``MAX_ITER`` short of ``TOL``."""
    probe = LogisticRegression(C=C, tol=TOL, max_iter=MAX_ITER, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # said in the notes instead
        probe.fit(x, y)
    return probe, bool(np.max(probe.n_iter_) >= MAX_ITER)


def _frozen(values, dtype=np.float64) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    array.setflags(write=False)
    return array
