"""Measure importance on any layer (issue #13): one bar per unit with the accuracy lost
in points, sortable, hover for the numbers; a click switches the unit off (and the
accuracy panel then says what the bar said), a double-click asks for its unit page."""

import csv

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

WAIT = 60_000


def _measure(qtbot, window, trigger=None):
    analysis = window.analysis
    with qtbot.waitSignal(analysis.importance_shown, timeout=WAIT) as shown:
        (trigger or analysis.importance_action.trigger)()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    QApplication.processEvents()
    return shown.args[0]


def _where(chart, i) -> QPoint:
    """Bar ``i``'s middle, in the plot's viewport (where the mouse goes)."""
    return chart.plot.mapFromScene(chart.bar_centre(i))


def double_click(widget, pos) -> None:
    """What the window system sends for a double-click: press, release, double-click,
    release (QTest's mouseDClick alone sends only the double-click)."""
    left = Qt.MouseButton.LeftButton
    QTest.mouseClick(widget, left, pos=pos)
    QTest.mouseDClick(widget, left, pos=pos)
    QTest.mouseRelease(widget, left, pos=pos)


def _expected(compute, site, mode="zero"):
    sweep = compute.unit_importance(site, mode)
    return sweep, 100.0 * (sweep.baseline_score - np.asarray(sweep.score))


def test_conv1_charts_one_bar_per_channel_with_the_points_lost(qtbot, make_window, compute):
    window = make_window(layer="conv1")
    chart = window.analysis.importance
    left = chart.plot.getPlotItem().getAxis("left")
    assert left.labelText == "points lost"   # before a run as after it: one wording
    _measure(qtbot, window, window.ablation_panel.importance.click)
    assert window.analysis.importance_dock.isVisible()
    sweep, drops = _expected(compute, "conv1")
    heights = np.asarray(chart.bars.opts["height"], float)
    assert len(heights) == 16 == len(sweep.units)
    np.testing.assert_allclose(heights, drops, atol=1e-9)
    assert chart.axis.tokens == [str(u) for u in range(16)]
    assert chart.plot.getPlotItem().getAxis("left").labelText == "points lost"
    assert "conv1" in chart.caption.text() and "channel" in chart.caption.text()
    # Sort by loss: biggest first, ties in unit order; the labels travel with the bars.
    chart.sort_box.setChecked(True)
    order = np.argsort(-drops, kind="stable")
    np.testing.assert_allclose(chart.bars.opts["height"], drops[order], atol=1e-9)
    assert chart.axis.tokens == [str(u) for u in order]
    assert list(chart.bars.opts["height"]) == sorted(chart.bars.opts["height"], reverse=True)
    chart.sort_box.setChecked(False)
    assert chart.axis.tokens == [str(u) for u in range(16)]


def test_clicking_a_bar_switches_that_channel_off_and_the_panel_agrees(
        qtbot, make_window, compute):
    window = make_window(layer="conv1")
    _measure(qtbot, window)
    chart = window.analysis.importance
    sweep, drops = _expected(compute, "conv1")
    chart.sort_box.setChecked(True)  # the click must hit the unit under the mouse
    u = int(np.argmax(drops))
    assert chart.entry_at_bar(0).unit == u
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        qtbot.mouseClick(chart.plot.viewport(), Qt.MouseButton.LeftButton,
                         pos=_where(chart, 0))
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    assert [(a.site, a.units) for a in window.workbench.ablations] == [("conv1", (u,))]
    result = window.accuracy_panel.result
    assert result.score == sweep.score[u]
    assert f"{100 * sweep.score[u]:.1f}%" in window.accuracy_panel.headline.text()
    # The bar of the unit that is off is framed; the tooltip says so.
    assert chart.bars.opts["pens"][0].color().name() == "#ff3b30"
    assert "switched off now" in chart.describe(0)


def test_hover_names_the_exact_numbers(qtbot, make_window, compute):
    window = make_window(layer="conv1")
    _measure(qtbot, window)
    chart = window.analysis.importance
    sweep, drops = _expected(compute, "conv1")
    u = 5
    chart._on_scene_moved(chart.bar_centre(u))
    text = chart.hover.text()
    assert f"conv1 channel {u}" in text
    assert f"{100 * sweep.score[u]:.2f} %" in text
    assert f"{drops[u]:+.2f} points" in text
    assert chart.plot.toolTip() == text


def test_double_click_asks_for_the_unit_page_and_switches_nothing_off(
        qtbot, make_window):
    window = make_window(layer="conv1")
    _measure(qtbot, window)
    chart = window.analysis.importance
    with qtbot.waitSignal(window.analysis.unit_page_requested, timeout=5_000) as asked:
        double_click(chart.plot.viewport(), _where(chart, 7))
    assert asked.args == ["conv1", 7]
    qtbot.wait(QApplication.doubleClickInterval() + 200)
    assert window.workbench.ablations == ()


def test_fc1_in_mean_mode_and_the_csv(qtbot, make_window, compute, tmp_path):
    window = make_window(layer="fc1")
    panel = window.ablation_panel
    panel.mode_box.setCurrentIndex(panel.mode_box.findData("mean"))
    sweep = _measure(qtbot, window)
    assert sweep.mode == "mean" and sweep.site == "fc1"
    chart = window.analysis.importance
    _, drops = _expected(compute, "fc1", "mean")
    np.testing.assert_allclose(chart.bars.opts["height"], drops, atol=1e-9)
    assert "(mean)" in chart.caption.text() and "neuron" in chart.caption.text()
    png, table = chart.export(str(tmp_path / "fc1.png"))
    assert png.stat().st_size > 0
    # The picture is the caption over the chart: no button, toggle or "Export…".
    image = QImage(str(png))
    ratio = chart.plot.grab().devicePixelRatio()
    assert image.width() == round(chart.plot.width() * ratio)
    assert chart.plot.height() * ratio < image.height() < \
        chart.plot.height() * ratio + 80 * ratio
    top = [QColor(image.pixel(x, 2)) for x in range(0, image.width(), 7)]
    assert max(c.lightness() for c in top) < 40   # the dark caption strip, not a button
    with open(table, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 64
    assert [int(r["unit"]) for r in rows] == list(range(64))
    np.testing.assert_allclose([float(r["drop (points)"]) for r in rows], drops, atol=1e-4)
    assert {r["mode"] for r in rows} == {"mean"}


def test_heads_are_charted_in_the_dock_and_the_attention_view_and_a_click_switches_one_off(
        qtbot, twindow, compute):
    """On an attention layer "Measure importance" (the button under the unit list, or
    Analyse ›) charts every head of every layer in the Importance dock, where the user
    asked, raised over the other tabs — and in the attention view's chart too."""
    analysis = twindow.analysis
    analysis.show_dock(analysis.probes_dock)   # another tab in front
    for _ in range(3):
        QApplication.processEvents()
    assert not analysis.importance.isVisible()
    with qtbot.waitSignal(analysis.importance_shown, timeout=WAIT) as shown:
        twindow.ablation_panel.importance.click()
    qtbot.waitUntil(lambda: not twindow.worker.busy, timeout=WAIT)
    QApplication.processEvents()
    assert [s.site for s in shown.args[0]] == ["block0.attn.heads", "block1.attn.heads"]
    assert analysis.importance_dock.isVisible() and analysis.importance.isVisible()
    sweeps = [compute.unit_importance(site) for site in ("block0.attn", "block1.attn")]
    assert [s.site for s in sweeps] == ["block0.attn.heads", "block1.attn.heads"]
    drops = np.concatenate([100 * (s.baseline_score - s.score) for s in sweeps])
    labels = [f"L{layer}H{h}" for layer in range(2) for h in range(4)]
    dock = analysis.importance
    for chart in (dock, twindow.attention_view.chart):
        assert chart.axis.tokens == labels
        np.testing.assert_allclose(chart.bars.opts["height"], drops, atol=1e-9)
    assert "Press the button" not in dock.caption_text
    assert "L0 = block0.attn" in dock.caption_text and "8 heads" in dock.caption_text
    assert dock.plot.getPlotItem().getAxis("left").labelText == "points lost"
    assert dock.button.isEnabled() and dock.export_button.isEnabled()
    with qtbot.waitSignal(twindow.accuracy_panel.updated, timeout=WAIT):
        qtbot.mouseClick(dock.plot.viewport(), Qt.MouseButton.LeftButton,
                         pos=_where(dock, 4))
    qtbot.waitUntil(lambda: not twindow.worker.busy, timeout=WAIT)
    assert [(a.site, a.units) for a in twindow.workbench.ablations] == \
        [("block1.attn.heads", (0,))]
    assert twindow.accuracy_panel.result.score == sweeps[1].score[0]
    # Both charts frame the head that is off now.
    for chart in (dock, twindow.attention_view.chart):
        assert chart.bars.opts["pens"][4].color().name() == "#ff3b30"
    with qtbot.waitSignal(analysis.unit_page_requested, timeout=5_000) as asked:
        double_click(dock.plot.viewport(), _where(dock, 2))
    assert asked.args == ["block0.attn.heads", 2]
    # The attention view's own button still charts its heads (and the dock's too).
    chart = twindow.attention_view.chart
    with qtbot.waitSignal(twindow.workbench.importance_ready, timeout=WAIT):
        twindow.attention_view.importance_button.click()
    qtbot.waitUntil(lambda: not twindow.worker.busy, timeout=WAIT)
    with qtbot.waitSignal(twindow.accuracy_panel.updated, timeout=WAIT):
        qtbot.mouseClick(chart.plot.viewport(), Qt.MouseButton.LeftButton,
                         pos=_where(chart, 4))
    qtbot.waitUntil(lambda: not twindow.worker.busy, timeout=WAIT)
    assert twindow.workbench.ablations == ()


def test_another_model_clears_every_analyse_chart(qtbot, twindow):
    """Head bars, a map and probes of the induction transformer are not left over the
    next model's (empty) charts: no bars, no labels, no "PC1 (…)", captions as before
    a run, the attention view's head chart and its table column emptied too."""
    analysis, view = twindow.analysis, twindow.attention_view
    empty_caption = analysis.importance.caption_text
    _measure(qtbot, twindow)
    twindow.model_tree.select("block1")
    with qtbot.waitSignal(analysis.map_shown, timeout=WAIT):
        analysis.map_action.trigger()
    qtbot.waitUntil(lambda: not twindow.worker.busy, timeout=WAIT)
    from tests.gui.test_probes_view import _report
    analysis.probes.show_reports((_report(),), "Induction transformer")
    assert view.chart.entries and analysis.importance.entries and view.importance
    with qtbot.waitSignal(twindow.accuracy_panel.updated, timeout=WAIT):
        twindow.workbench.open_model("digits_cnn")
    qtbot.waitUntil(lambda: not twindow.worker.busy, timeout=WAIT)
    for chart in (analysis.importance, view.chart):
        assert chart.entries == [] and chart.axis.tokens == []
        assert len(chart.bars.opts["height"]) == 0
        assert not chart.export_button.isEnabled()
    assert analysis.importance.caption_text == empty_caption
    assert analysis.importance.plot.getPlotItem().getAxis("left").labelText == "points lost"
    assert view.chart.caption_text.startswith("Press the button")
    assert view.importance == {}
    layer_map = analysis.layer_map
    assert layer_map.map is None and len(layer_map.scatter.data) == 0
    for side in ("left", "bottom"):
        axis = layer_map.plot.getPlotItem().getAxis(side)
        assert axis.labelText == "" and not axis.label.isVisible()
    assert layer_map.legend_entries == []
    assert layer_map.plot.getViewBox().viewRange() == [[0, 1], [0, 1]]   # not its range
    assert not analysis.probes.charts and analysis.probes.reports == ()


def test_at_1024x640_the_docks_keep_the_window_size_and_the_map_goes_left(
        qtbot, make_window):
    from PySide6.QtWidgets import QDockWidget

    window = make_window(layer="conv1")
    window.resize(1024, 640)
    for _ in range(5):
        QApplication.processEvents()
    _measure(qtbot, window)
    analysis = window.analysis
    for dock in (analysis.importance_dock, analysis.probes_dock, analysis.map_dock):
        analysis.show_dock(dock)
        for _ in range(5):
            QApplication.processEvents()
        assert (window.width(), window.height()) == (1024, 640), dock.objectName()
    assert window.dockWidgetArea(analysis.importance_dock) == \
        Qt.DockWidgetArea.BottomDockWidgetArea
    # A map needs height: in a short window it is a tab beside the model tree.
    assert analysis.map_dock in window.tabifiedDockWidgets(
        window.findChild(QDockWidget, "Model"))
    analysis.show_dock(analysis.importance_dock)
    for _ in range(5):
        QApplication.processEvents()
    assert analysis.importance.plot.height() >= 60
    assert analysis.importance.caption.isVisible()
