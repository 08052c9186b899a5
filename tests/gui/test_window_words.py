"""Plain words and honest numbers: what the accuracy is scored on, where a mean ablation
puts a unit, one intact row per model in the ablation table, numbers in its CSV, and a
mode box that is never blank (issue #12)."""

import csv

import numpy as np
from PySide6.QtWidgets import QApplication

from core.ablation import Ablation

WAIT = 30_000


def _settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def test_accuracy_detail_says_what_it_is_scored_on_without_jargon(qtbot, make_window):
    window = make_window(layer="conv2")
    panel = window.accuracy_panel
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        window.workbench.set_ablations((Ablation("conv2", (3,)),))
    assert panel.result.resumed_from  # the fast path ran …
    text = panel.detail.text()
    assert "held-out" not in text and "re-ran" not in text  # … and is not read out
    assert str(panel.result.n) in text
    result = panel.result
    # The window names the data when a model opens; the next result reads it out.
    panel.set_dataset("my_digits.csv", builtin=False)
    panel.show_result(result)
    assert "your data (my_digits.csv)" in panel.detail.text()
    panel.set_dataset("digits (eval)", builtin=True)
    panel.show_result(result)
    assert "built-in test set" in panel.detail.text()


def test_preprocessing_explanation_has_room_and_is_shown_whole(qtbot, make_window):
    window = make_window(layer="conv1")
    steps = window.input_panel.steps
    _settle()
    assert "upsampled" in steps.text()
    assert steps.width() >= 0.6 * window.input_panel.width()
    assert steps.heightForWidth(steps.width()) <= steps.height()
    assert steps.visibleRegion().boundingRect() == steps.rect()


def test_mean_ablation_markers_sit_at_the_mean_not_at_zero(qtbot, make_window):
    window = make_window(layer="fc1")
    view = window.neuron_view
    live = [0, 1, 2, 3]
    with qtbot.waitSignal(view.drawn, timeout=WAIT):
        window.workbench.set_ablations((Ablation("fc1", tuple(live), "mean"),))
    qtbot.waitUntil(lambda: view.ablated == frozenset(live), timeout=WAIT)
    xs, ys = view.crosses.getData()
    assert list(xs) == live
    np.testing.assert_allclose(ys, view.values[live])
    assert np.abs(ys).max() > 1e-3  # a real mean, so a marker at 0 would be wrong
    grid = window.channel_grid
    with qtbot.waitSignal(grid.drawn, timeout=WAIT):
        window.model_tree.select("conv2")
    with qtbot.waitSignal(grid.drawn, timeout=WAIT):
        window.workbench.set_ablations((Ablation("conv2", (2,), "mean"),))
    qtbot.waitUntil(lambda: 2 in grid.ablated, timeout=WAIT)
    assert "mean" in grid._titles[2].toPlainText()
    assert "mean" in grid.tiles[2].toolTip()


def test_ablation_table_one_intact_row_per_model_a_dataset_column_and_numbers(
        qtbot, make_window, tmp_path):
    window = make_window(layer="conv1")
    table = window.experiments_panel
    for name in ("induction_transformer", "digits_cnn", "induction_transformer"):
        with qtbot.waitSignal(window.accuracy_panel.updated, timeout=60_000):
            window.workbench.open_model(name)
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=60_000)
    models = [row[1] for row in table.rows]
    assert sorted(models) == ["digits_cnn", "induction_transformer"]
    headers = [table.table.horizontalHeaderItem(c).text()
               for c in range(table.table.columnCount())]
    assert "dataset" in headers
    table.record("digits_cnn", window.accuracy_panel.result, dataset="my_digits.csv")
    assert table.rows[-1][headers.index("dataset")] == "my_digits.csv"
    out = tmp_path / "table.csv"
    table.export_csv(str(out))
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    score = next(i for i, h in enumerate(header) if h.startswith("score"))
    assert "%" in header[score]  # the unit is in the header …
    for row in body:
        float(row[score])  # … and every cell is a plain number
        assert "%" not in row[score]
    first = float(body[0][score])
    assert 90 < first <= 100  # digits_cnn, intact: a percentage


def test_mode_box_survives_a_weight_scale_and_layer_off_uses_the_unit_mode(
        qtbot, make_window):
    window = make_window(layer="fc1")
    panel = window.ablation_panel
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        panel.scale.setValue(0.5)
        panel.scale_apply.click()
    assert window.workbench.ablations == (Ablation("fc1", mode="scale", value=0.5),)
    assert panel.mode_box.currentIndex() >= 0 and panel.mode_box.currentText()
    assert panel.mode == "zero"
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        panel.layer_off.click()
    whole = [a for a in window.workbench.ablations if a.units]
    assert whole and whole[-1].mode == "zero" and len(whole[-1].units) == 64
    # With "mean" chosen, a whole layer off is a mean ablation, and the box keeps it.
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        panel.mode_box.setCurrentIndex(panel.mode_box.findData("mean"))
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        panel.scale.setValue(0.75)
        panel.scale_apply.click()
    assert panel.mode == "mean" and panel.mode_box.currentText()
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        panel.layer_off.click()
    assert [a for a in window.workbench.ablations if a.units][-1].mode == "mean"
