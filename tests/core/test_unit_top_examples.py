"""The call added to show the cost of a new session call (issue #11): the examples on
which a unit fires most, equal to a brute-force argsort, in-process and remote."""

import numpy as np
import pytest

from core.errors import InputError
from core.remote import RemoteSession


def _brute_force(session, site, unit, k):
    acts = session.adapter.run(np.asarray(session.dataset.inputs), capture=(site,))
    peak = acts.activations[site][:, unit].reshape(len(session.dataset), -1).max(axis=1)
    return np.argsort(-peak, kind="stable")[:k], np.sort(peak)[::-1][:k]


@pytest.mark.parametrize("site,unit", [("conv2", 19), ("fc1", 7), ("relu1", 2)])
def test_top_examples_equal_a_brute_force_argsort(session, site, unit):
    top = session.unit_top_examples(site, unit, k=16)
    want_idx, want_val = _brute_force(session, site, unit, 16)
    np.testing.assert_array_equal(top.indices, want_idx)
    np.testing.assert_allclose(top.values, want_val, rtol=1e-6)


def test_the_compute_process_gives_the_same_answer(session):
    remote = RemoteSession()
    try:
        remote.open_model("digits_cnn")
        there = remote.unit_top_examples("conv2", 19, 9)
        with pytest.raises(InputError, match="no unit 99"):
            remote.unit_top_examples("conv2", 99)
    finally:
        remote.close()
    np.testing.assert_array_equal(there.indices, session.unit_top_examples("conv2", 19, 9).indices)
