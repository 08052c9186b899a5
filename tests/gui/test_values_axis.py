"""The VALUES input panel's row chart and strip in the real window (issue #15 review):
ticks in the data's own units, a left-axis label that is not cut, class names on the
strip's thumbnails."""

import numpy as np
import pytest

from core.live import prepare
from core.session import Session
from gui.main_window import MainWindow
from tests.gui.conftest import LOAD_TIMEOUT_MS
from tests.gui.tabular_models import synthetic_rows, trained_mlp

NAMES = ("alpha", "beta", "gamma")


@pytest.fixture
def window(qtbot):
    rows, labels = synthetic_rows(40, seed=5)
    rows = (rows / np.abs(rows).max() * 0.5).astype(np.float32)  # values within ±0.5
    live = prepare(trained_mlp(), rows, labels, NAMES, layer="relu")
    session = Session()
    session.add_live(live.entry, live.opened)
    w = MainWindow(session)
    qtbot.addWidget(w)
    w.resize(1024, 640)
    w.show()
    with qtbot.waitSignal(w.accuracy_panel.updated, timeout=LOAD_TIMEOUT_MS):
        w.workbench.open_model(live.name)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=LOAD_TIMEOUT_MS)
    yield w, labels
    w.close()


def test_row_chart_ticks_are_the_values_and_the_strip_names_classes(qtbot, window):
    w, labels = window
    panel = w.presenter.values_input
    qtbot.waitUntil(lambda: panel.values is not None, timeout=LOAD_TIMEOUT_MS)
    axis = panel.chart.getPlotItem().getAxis("left")
    axis.resizeEvent()  # as a paint would: the scale is chosen when the axis lays out
    assert axis.autoSIPrefixScale == 1.0
    assert axis.labelString().replace("&nbsp;", " ").count("x0") == 0
    low, high = axis.range
    assert -1 < low and high < 1  # ticks of ±0.5, not ±500
    assert [panel.strip.item(i).text() for i in range(5)] == [NAMES[k] for k in labels[:5]]
