"""Linear probes per layer (issue #13): honest held-out accuracy, a shuffled-label
control near chance, a split by example, and features read off the right positions."""

import numpy as np
import pytest

from core.analysis.probes import layer_rows, probe_layers, split_examples
from core.errors import Cancelled
from core.jobs import CancelToken


def _probe(session, sites, seed=0, token=None):
    labels = np.asarray(session.dataset.labels)
    layers = {info.name: info for info in session.adapter.layers()}
    return probe_layers(
        "digit", sites,
        lambda site: layer_rows(session._evaluator.site_output(site), layers[site].unit_axis),
        labels, np.arange(len(labels)), tuple(session.dataset.class_names), seed, token)


def test_the_last_hidden_layer_tells_the_digit_and_shuffled_labels_do_not(session):
    report = _probe(session, ["relu3", "fc2"])
    assert report.task == "digit" and report.sites == ("relu3", "fc2")
    assert report.held_out[0] >= 0.95 and report.train[0] >= 0.95
    assert report.shuffled[0] <= 0.25 and report.shuffled[1] <= 0.25
    assert 0.05 <= report.chance <= 0.2  # ten roughly balanced digits
    assert report.n_train + report.n_test == len(session.dataset.labels)
    assert report.n_test == round(0.3 * len(session.dataset.labels))
    assert report.dims.tolist() == [19, 10]  # 45 of relu3's 64 units never fire
    assert report.classes == tuple(session.dataset.class_names)
    assert any(note.startswith("relu3: 45 of 64 features constant") for note in report.notes)
    for array in (report.held_out, report.train, report.shuffled, report.dims):
        assert array.shape == (2,) and not array.flags.writeable


def test_probes_are_deterministic_and_report_progress_between_sites(session):
    seen = []
    first = _probe(session, ["pool2", "relu3"], token=CancelToken(lambda f, t: seen.append((f, t))))
    again = _probe(session, ["pool2", "relu3"])
    for name in ("held_out", "train", "shuffled", "dims"):
        assert np.array_equal(getattr(first, name), getattr(again, name))
    assert seen[:2] == [(0.0, "probing pool2…"), (0.5, "probing relu3…")] and seen[-1][0] == 1.0


def test_cancelling_stops_between_sites(session):
    token = CancelToken()
    asked = []

    def rows(site):
        asked.append(site)
        token.cancel()
        return np.random.default_rng(0).standard_normal((100, 3))

    with pytest.raises(Cancelled):
        probe_layers("t", ["a", "b"], rows, np.arange(100) % 2, np.arange(100), token=token)
    assert asked == ["a"]


def test_the_split_is_fixed_by_its_seed_and_covers_every_example_once():
    train, test = split_examples(359)
    again_train, again_test = split_examples(359, seed=0)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert len(test) == 108 and train.dtype == test.dtype == np.int64
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(359))
    assert not np.array_equal(split_examples(359, seed=1)[1], test)
    with pytest.raises(ValueError):
        split_examples(1)


def test_rows_of_one_example_never_sit_on_both_sides():
    # Each example has its own fingerprint and a random label shared by its 6 rows: a
    # split by row would let the probe look the label up (~100 %); by example it cannot.
    rng = np.random.default_rng(0)
    n, per = 200, 6
    examples = np.repeat(np.arange(n), per)
    label_of = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 300))[examples] + 0.01 * rng.standard_normal((n * per, 300))
    report = probe_layers("leak", ["x"], lambda site: x, label_of[examples], examples)
    train_ex, test_ex = split_examples(n)
    assert (report.n_train, report.n_test) == (per * len(train_ex), per * len(test_ex))
    assert report.train[0] == 1.0
    assert report.held_out[0] < 0.7


def test_known_answers_on_synthetic_features():
    rng = np.random.default_rng(1)
    n, classes = 600, 4
    labels = rng.integers(0, classes, n)
    centres = 6.0 * rng.standard_normal((classes, 20))
    separable = centres[labels] + rng.standard_normal((n, 20))
    noise = rng.standard_normal((n, 20))
    wide_noise = rng.standard_normal((n, 5000))  # wider than the training rows
    features = {"separable": separable, "noise": noise, "wide noise": wide_noise}
    report = probe_layers("synthetic", list(features), features.__getitem__, labels,
                          np.arange(n))
    assert report.held_out[0] >= 0.99
    assert abs(report.held_out[1] - 0.25) < 0.1 and abs(report.held_out[2] - 0.25) < 0.1
    assert report.train[2] == 1.0  # wide noise is memorised, and tells nothing held out
    assert (report.shuffled < 0.4).all()
    assert report.dims.tolist() == [20, 20, 5000]


def test_layer_rows_for_images_and_the_three_sequence_sites():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((5, 3, 4, 4))
    assert layer_rows(image, 0).shape == (5, 48) and layer_rows(image, 0).dtype == np.float32
    positions = np.array([[0, 1], [2, 0], [4, 6]])
    seq = rng.standard_normal((5, 7, 8))  # (T, F), unit axis 1
    rows = layer_rows(seq, 1, positions)
    assert rows.shape == (3, 8) and rows.dtype == np.float32
    assert np.allclose(rows[2], seq[4, 6, :])
    heads = rng.standard_normal((5, 4, 7, 16))  # (heads, T, D), unit axis 0
    rows = layer_rows(heads, 0, positions)
    assert rows.shape == (3, 64) and np.allclose(rows[0], np.concatenate(heads[0, :, 1, :]))
    pattern = rng.standard_normal((5, 4, 7, 7))  # (heads, T, T): the query row
    rows = layer_rows(pattern, 0, positions)
    assert rows.shape == (3, 28) and np.allclose(rows[1], pattern[2, :, 0, :].ravel())
    with pytest.raises(ValueError):
        layer_rows(seq, 1, np.array([1, 2]))


def test_layers_wider_than_the_cap_are_probed_on_leading_components(monkeypatch):
    from core.analysis import probes
    monkeypatch.setattr(probes, "MAX_FEATURES", 50)  # stands for 4096, to stay quick
    monkeypatch.setattr(probes, "PCA_COMPONENTS", 20)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    x = rng.standard_normal((300, 80))
    x[:, :3] += 3 * np.eye(3)[labels]
    report = probe_layers("t", ["x"], lambda site: x, labels, np.arange(300))
    assert report.notes == ("x: 80 features probed on their 20 leading principal components",)
    assert report.dims.tolist() == [80] and report.held_out[0] > report.chance + 0.2
