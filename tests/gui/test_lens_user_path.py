"""The logit lens on the path users take (issue #14): the real window on the compute
process, a typed prompt, Analyse › Logit lens, a typed target; then a model without a
readout gets the sentence, not a traceback."""

import pytest
from PySide6.QtCore import Qt

from core.adapters.lm_lens import NOT_AN_LM
from core.zoo import smollm

WAIT = 120_000

pytestmark = pytest.mark.skipif(not smollm.available(),
                                reason="the smollm extra is not installed")


def test_typed_prompt_lens_says_paris_then_another_model_is_told_why(qtbot, make_window):
    window = make_window("smollm2-135m", layer="block3.attn")
    panel, wb, lens = window.token_panel, window.workbench, window.lens
    assert lens.action.shortcut().toString() == "Ctrl+L"
    assert lens.action in window.analysis.menu.actions()
    with qtbot.waitSignal(wb.capture_ready, timeout=WAIT):
        panel.edit.setText("The capital of France is")
        qtbot.keyClick(panel.edit, Qt.Key.Key_Return)
    with qtbot.waitSignal(lens.shown, timeout=WAIT) as drawn:
        lens.action.trigger()
    shown = drawn.args[0]
    vocab = wb.info.class_names
    assert [vocab[i] for i in shown.tokens] == ["The", "␣capital", "␣of", "␣France", "␣is"]
    assert vocab[shown.top_ids[-1, -1, 0]] == "␣Paris"
    assert lens.dock.isVisible() and lens.view.lens is shown
    assert lens.view.row_axis.tokens[-1] == "29 mlp = output"

    with qtbot.waitSignal(lens.shown, timeout=WAIT) as drawn:
        lens.view.target.setText(" Paris")
        qtbot.keyClick(lens.view.target, Qt.Key.Key_Return)
    paris = drawn.args[0]
    assert vocab[paris.target] == "␣Paris" and paris.target_probs[-1, -1] > 0.5
    assert lens.view.colour.currentData() == "target"

    # An ablation while the dock is open reads the lens again, with it.
    with qtbot.waitSignal(lens.shown, timeout=WAIT) as drawn:
        wb.toggle_unit("block3.attn.heads", 0)
    assert drawn.args[0].ablations == wb.ablations and wb.ablations

    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        wb.open_model("digits_cnn")
    qtbot.waitUntil(lambda: lens.view.caption.text() == NOT_AN_LM, timeout=WAIT)
    assert lens.view.lens is None
    assert window.message_bar.message() == ""
