"""The learning path in the window (issue #5)."""

import csv

import pytest
from PySide6.QtCore import QTimer

from core.ablation import Ablation

WAIT = 30_000


@pytest.mark.parametrize("number,trainer", [(1, "linear"), (2, "logistic"), (3, "mlp")])
def test_training_lessons_open_their_view(qtbot, make_window, number, trainer):
    window = make_window()
    with qtbot.waitSignal(window.training_view.updated, timeout=WAIT) as blocker:
        window.lessons_panel.show_lesson(number)
        window.lessons_panel.open_button.click()
    assert blocker.args[0].trainer == trainer and blocker.args[0].step == 0
    assert window.centre.currentWidget() is window.training_view
    assert not window.side_dock.isVisible()
    assert window.lessons_panel.text.toPlainText().startswith(f"{number} ·")


@pytest.mark.parametrize("number,model,layer", [(4, "digits_cnn", "conv1"),
                                                (5, "induction_transformer", "block0.attn"),
                                                (6, "digits_cnn", "conv2")])
def test_workbench_lessons_open_the_right_layer(qtbot, make_window, number, model, layer):
    window = make_window(layer="fc1")
    window.lessons.open(number)
    qtbot.waitUntil(lambda: window.workbench.layer == layer and not window.worker.busy
                    and window.workbench.info.name == model, timeout=WAIT)
    shown = window.views.currentWidget()
    assert shown is (window.attention_view if number == 5 else window.channel_grid)
    assert window.centre.currentWidget() is not window.training_view
    assert window.experiments_dock.isVisible() == (number == 6)


def test_step_adds_one_point_to_the_loss_curve(qtbot, make_window):
    window = make_window()
    view = window.training_view
    with qtbot.waitSignal(view.updated, timeout=WAIT):
        window.lessons.open(1)
    for expected in (2, 3):
        with qtbot.waitSignal(view.updated, timeout=WAIT):
            view.step_button.click()
        x, _ = view.plots.loss_curve.getData()
        assert len(x) == expected


def test_run_and_pause_keep_the_event_loop_free(qtbot, make_window):
    window = make_window()
    view = window.training_view
    with qtbot.waitSignal(view.updated, timeout=WAIT):
        window.lessons.open(2)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    view.run_button.click()
    qtbot.waitUntil(lambda: view.snapshot.step >= 5, timeout=WAIT)
    assert len(ticks) >= 3  # the GUI thread kept processing its own timer meanwhile
    view.run_button.click()  # pause
    qtbot.waitUntil(lambda: not view._pending, timeout=WAIT)
    paused_at = view.snapshot.step
    with qtbot.waitSignal(view.updated, timeout=500, raising=False) as more:
        pass
    timer.stop()
    assert not more.signal_triggered and view.snapshot.step == paused_at
    assert view.run_button.text() == "Run"


def test_trained_network_opens_in_the_workbench(qtbot, make_window):
    window = make_window()
    view = window.training_view
    with qtbot.waitSignal(view.updated, timeout=WAIT):
        window.lessons.open(3)
    with qtbot.waitSignal(view.updated, timeout=WAIT):
        view.train(40)
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=WAIT):
        view.open_button.click()
    assert window.workbench.info.name == "lesson_mlp"
    assert window.model_tree.names() == ["flatten", "fc1", "relu1", "fc2"]
    assert window.views.currentWidget() is window.neuron_view


def test_ablation_table_records_and_exports(qtbot, make_window, tmp_path):
    window = make_window(layer="fc1")
    table = window.experiments_panel
    assert len(table.rows) == 1 and "intact" in table.rows[0][2]
    with qtbot.waitSignal(table.recorded, timeout=WAIT):
        window.workbench.toggle_unit("fc1", 3)
    with qtbot.waitSignal(table.recorded, timeout=WAIT):
        window.ablation_panel.layer_off.click()
    with qtbot.waitSignal(table.recorded, timeout=WAIT):
        window.ablation_panel.scale.setValue(0.5)
        window.ablation_panel.scale_apply.click()
    assert window.workbench.ablations[-1] == Ablation("fc1", mode="scale", value=0.5)
    labels = [row[2] for row in table.rows]
    assert labels[1] == "fc1:3 (zero)"
    assert "fc1:" in labels[2] and labels[3].endswith("fc1: weights ×0.5")
    out = tmp_path / "ablations.csv"
    table.export_csv(str(out))
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][2] == "what was removed or changed" and len(rows) == 5
    assert float(rows[3][3].rstrip("%")) < 30  # a whole layer off: near chance


def test_skipping_a_shape_changing_layer_is_a_message(qtbot, make_window):
    window = make_window(layer="conv2")
    with qtbot.waitSignal(window.workbench.error, timeout=WAIT):
        window.ablation_panel.skip.click()
    assert "cannot be skipped" in window.message_bar.message()
