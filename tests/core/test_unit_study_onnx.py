"""Unit pages, importance, probes and maps on an ONNX model file (issue #13): the same
numbers as the torch model it was exported from, and a clear sentence where the math
is not available (no gradients for feature visualisation, no weights to draw)."""

import numpy as np
import pytest

from core.errors import InputError
from core.session import Session


@pytest.fixture(scope="module")
def both(onnx_path):
    here, there = Session(), Session()
    here.open_model("digits_cnn")
    there.open_checkpoint(str(onnx_path))
    return here, there


def test_unit_pages_match_the_torch_model(both):
    here, there = both
    for site, unit in (("conv2", 19), ("fc1", 7)):
        a, b = here.unit_page(site, unit), there.unit_page(site, unit)
        np.testing.assert_array_equal(a.top.indices[:8], b.top.indices[:8])
        np.testing.assert_allclose(a.group_means, b.group_means, rtol=1e-4)
    page = there.unit_page("conv1", 0)
    assert page.weights is None and "ONNX" in page.weights_note


def test_importance_matches_the_torch_model(both):
    here, there = both
    np.testing.assert_allclose(there.unit_importance("conv2").score,
                               here.unit_importance("conv2").score)


def test_probes_and_maps_run_on_onnx(both):
    _, there = both
    (report,) = there.probes()
    assert report.held_out[list(report.sites).index("relu3")] >= 0.9
    layer_map = there.layer_map("fc1")
    assert layer_map.coords.shape == (359, 2)


def test_feature_visualisation_says_why_not(both):
    _, there = both
    with pytest.raises(InputError, match="gradients"):
        there.feature_visualisation("conv1", 0)
