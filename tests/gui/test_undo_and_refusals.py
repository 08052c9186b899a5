"""Undo/redo of ablations (Ctrl+Z / Ctrl+Shift+Z), and changes the model refuses are
taken back instead of being listed while the panel waits forever (issue #12)."""

from PySide6.QtCore import Qt

from core.ablation import Ablation

WAIT = 30_000


def _active(window) -> list[str]:
    panel = window.ablation_panel.active
    return [panel.item(i).text() for i in range(panel.count())]


def test_undo_and_redo_walk_the_ablation_history(qtbot, make_window):
    window = make_window(layer="conv2")
    wb, panel = window.workbench, window.accuracy_panel
    for unit in (3, 5):
        with qtbot.waitSignal(panel.updated, timeout=WAIT):
            wb.toggle_unit("conv2", unit)
    assert wb.ablations == (Ablation("conv2", (3, 5)),)
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert wb.ablations == (Ablation("conv2", (3,)),)
    assert panel.result.ablations == wb.ablations
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        window.undo_action.trigger()
    assert wb.ablations == () and not window.undo_action.isEnabled()
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        qtbot.keyClick(window, Qt.Key.Key_Z,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert wb.ablations == (Ablation("conv2", (3,)),)
    # A new change after an undo drops what could have been redone.
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        wb.toggle_unit("conv2", 9)
    assert not window.redo_action.isEnabled()


def test_a_refused_skip_is_taken_back(qtbot, make_window):
    window = make_window(layer="conv2")
    wb, panel = window.workbench, window.accuracy_panel
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        wb.toggle_unit("conv2", 1)
    with qtbot.waitSignal(wb.error, timeout=WAIT):
        wb.apply_layer_change(Ablation("conv2", mode="skip"))
    assert "cannot be skipped" in window.message_bar.message()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    assert wb.ablations == (Ablation("conv2", (1,)),)
    assert all("skipped" not in text for text in _active(window))
    assert "Evaluating" not in panel.headline.text() + panel.detail.text()


def test_scaling_weights_keeps_the_unit_mode(qtbot, make_window):
    window = make_window(layer="fc1")
    wb = window.workbench
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        wb.set_ablations((Ablation("fc1", mode="scale", value=0.5),))
    assert wb.mode == "zero"
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.ablation_panel.layer_off.click()
    assert any(a.mode == "zero" and a.units for a in wb.ablations)
