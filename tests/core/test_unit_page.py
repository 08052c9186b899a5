"""The unit page's numbers (issue #13): top-k and bottom-k equal a brute-force argsort of
captured activations with ties broken by index, the histogram counts every example, the
class means are the means, the effect is a real measurement — in-process and through
the compute process users run."""

import numpy as np
import pytest

from core.ablation import Ablation
from core.analysis.unit_index import build_index
from core.errors import InputError
from core.model import LayerInfo
from core.session import Session


def _peaks(session, site, unit):
    """Brute force: a fresh hooked forward over the data, max over positions."""
    acts = session.adapter.run(np.asarray(session.dataset.inputs), capture=(site,))
    return acts.activations[site][:, unit].reshape(len(session.dataset), -1).max(axis=1)


@pytest.mark.parametrize("site,unit", [("conv2", 19), ("fc1", 7), ("relu1", 2),
                                       ("pool2", 30)])
def test_top_and_bottom_k_equal_a_brute_force_argsort(session, site, unit):
    page = session.unit_page(site, unit, k=16)
    peak = _peaks(session, site, unit)
    np.testing.assert_array_equal(page.top.indices, np.argsort(-peak, kind="stable")[:16])
    np.testing.assert_array_equal(page.bottom.indices, np.argsort(peak, kind="stable")[:16])
    np.testing.assert_allclose(page.top.values, np.sort(peak)[::-1][:16], rtol=1e-6)
    assert page.histogram.sum() == len(session.dataset)
    labels = np.asarray(session.dataset.labels)
    np.testing.assert_allclose(page.group_means[3], peak[labels == 3].mean(), rtol=1e-5)
    np.testing.assert_array_equal(page.top.labels, labels[page.top.indices])


def test_ties_are_broken_by_example_index():
    info = LayerInfo("relu", "ReLU", (2, 2, 2), 0, 0)
    acts = np.zeros((6, 2, 2, 2), np.float32)
    acts[[4, 1, 5], 0, 0, 0] = 3.0  # three examples tie for the top
    index = build_index("relu", acts, info)
    np.testing.assert_array_equal(index.ranked(0, 4), [1, 4, 5, 0])
    np.testing.assert_array_equal(index.ranked(0, 3, lowest=True), [0, 2, 3])


def test_maps_and_pictures_belong_to_the_examples_shown(session):
    page = session.unit_page("conv1", 5, k=4)
    acts = session.adapter.run(np.asarray(session.dataset.inputs)[page.top.indices],
                               capture=("conv1",)).activations["conv1"]
    np.testing.assert_allclose(page.top.maps, acts[:, 5], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(page.top.pictures,
                                  session.dataset.display[page.top.indices])


def test_effect_is_the_per_class_change_when_switched_off(session):
    page = session.unit_page("conv2", 19)
    assert page.effect.kind == "accuracy change"
    result = session.evaluate((Ablation("conv2", (19,)),))
    np.testing.assert_allclose(page.effect.values,
                               100 * (result.per_group - result.baseline_per_group))


def test_unknown_units_get_a_sentence(session):
    with pytest.raises(InputError, match="there is no channel 99"):
        session.unit_page("conv2", 99)
    with pytest.raises(InputError, match="no layer named"):
        session.unit_page("conv9", 0)


def test_a_head_page_reads_its_tokens():
    s = Session()
    s.open_model("induction_transformer")
    page = s.unit_page("block1.attn", 1, k=8)  # the attention module means its heads
    assert page.site == "block1.attn.heads" and page.unit_name == "head"
    assert page.top.maps.shape == (8, 25) and len(page.top.tokens) == 8
    assert page.top.tokens[0][0] == "^"  # BOS, then letters
    assert np.all(np.diff(page.top.values) <= 0)


def test_the_compute_process_gives_the_same_page(session, remote):
    there = remote.unit_page("conv2", 19, 9)
    here = session.unit_page("conv2", 19, 9)
    np.testing.assert_array_equal(there.top.indices, here.top.indices)
    np.testing.assert_array_equal(there.histogram, here.histogram)
    with pytest.raises(InputError, match="no channel 99"):
        remote.unit_page("conv2", 99)
