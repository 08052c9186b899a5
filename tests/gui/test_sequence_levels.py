"""The sequence view's colours: a few huge features (a language model's residual
stream) saturate instead of washing every other value out to white."""

import numpy as np

from gui.views.sequence_view import SequenceView, robust_levels


def test_ordinary_values_use_the_whole_range():
    values = np.random.default_rng(0).normal(size=(5, 576)).astype(np.float32)
    levels, clipped = robust_levels(values)
    m = float(np.abs(values).max())
    assert not clipped and levels == (-m, m)


def test_a_few_outliers_saturate_and_the_title_says_so(qtbot):
    values = np.random.default_rng(0).normal(size=(5, 576)).astype(np.float32)
    values[0, 508] = 647.0
    levels, clipped = robust_levels(values)
    typical = float(np.percentile(np.abs(values), 99))
    assert clipped and levels == (-typical, typical) and typical < 5
    view = SequenceView()
    qtbot.addWidget(view)
    view.show_sequence("block4.resid_post", values, ["t"] * 5, frozenset())
    assert view.bar.levels() == (-typical, typical)
    assert "(largest 647)" in view.title.text()
