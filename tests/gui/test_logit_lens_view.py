"""The logit lens view (issue #14) with a real lens of SmolLM2: rows from the embedding
up to the output (always labelled), positions kept apart, hover and click."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from core.zoo import smollm
from gui.app import configure_pyqtgraph
from gui.views.logit_lens_view import LogitLensView, position_labels

PROMPT = "The cat sat on the mat because the"


@pytest.fixture(scope="module")
def lenses(smollm_session):
    s = smollm_session
    x = smollm.encode(PROMPT)
    return s.logit_lens(x), s.logit_lens(x, int(smollm.encode(" cat")[0])), s.info


@pytest.fixture
def view(qtbot, lenses):
    configure_pyqtgraph()
    v = LogitLensView()
    qtbot.addWidget(v)
    v.resize(1100, 520)
    v.show()
    with qtbot.waitSignal(v.drawn):
        v.show_lens(lenses[0], lenses[2].class_names)
    return v


def _cell_pos(view, shown_row, col):
    return view.plot.mapFromScene(view.image.mapToScene(QPointF(col + 0.5, shown_row + 0.5)))


def test_rows_rise_to_the_output_and_positions_stay_apart(view, lenses):
    lens = lenses[0]
    assert len(view.shown) == 31 and view.shown[0] == 0 and view.shown[-1] == 60
    assert view.row_axis.tokens[0] == "embed"
    assert view.row_axis.tokens[-1] == "29 mlp = output"
    # Thinned or not, the output's label is the first tick drawn.
    assert view.row_axis._tickLevels[0][0] == (30.5, "29 mlp = output")
    labels = view.position_axis.tokens
    assert labels[1] == "1: ␣cat" and labels[4] == "4: ␣the" and labels[7] == "7: ␣the"
    assert labels == position_labels([smollm.vocab()[i] for i in lens.tokens])
    view.substeps.setChecked(True)
    assert len(view.shown) == 61 and view.row_axis.tokens[1] == "0 attn"
    assert view.image.values.shape == (61, len(lens.tokens))


def test_cells_name_and_colour_their_top_token(view, lenses):
    lens = lenses[0]
    np.testing.assert_array_equal(view.image.values, lens.top_probs[view.shown, :, 0])
    vocab = lenses[2].class_names
    assert view.cells.texts[-1] == [vocab[i] for i in lens.top_ids[-1, :, 0]]
    assert view.cells.light.shape == view.image.values.shape


def test_click_shows_the_top_10_and_hover_the_top_5(qtbot, view, lenses):
    lens, vocab = lenses[0], lenses[2].class_names
    col = len(lens.tokens) - 1
    qtbot.waitUntil(lambda: view.image in view.plot.items(_cell_pos(view, 30, col)))
    qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton,
                     pos=_cell_pos(view, 30, col))
    assert view.selected == (60, col)
    assert view.top_list.count() == 10
    first = view.top_list.item(0).text()
    assert first.startswith(f"1. {vocab[lens.top_ids[60, col, 0]]} ")
    assert "29 mlp = output" in view.top_title.text()
    view._on_hover((0, 2, 0.0))
    text = view.hover.text()
    assert text.startswith("embed · 2: ␣sat · top 5: ")
    assert text.count("%") == 5


def test_a_target_colours_the_cells_by_its_probability(view, lenses):
    with_target = lenses[1]
    view.show_lens(with_target, lenses[2].class_names, "")
    assert view.colour.currentData() == "target"
    np.testing.assert_array_equal(view.image.values, with_target.target_probs[view.shown])
    assert "␣cat" in view.caption.text()
    view.colour.setCurrentIndex(view.colour.findData("top"))
    np.testing.assert_array_equal(view.image.values, with_target.top_probs[view.shown, :, 0])
    view.show_lens(lenses[0], lenses[2].class_names)   # no target: top colouring only
    assert view.colour.currentData() == "top"
    assert not view.colour.model().item(view.colour.findData("target")).isEnabled()


def test_a_message_replaces_the_lens(view):
    view.select(3, 1)
    view.show_message("The logit lens needs a language model.")
    assert view.lens is None and view.top_list.count() == 0
    assert view.caption.text() == "The logit lens needs a language model."
    assert view.row_axis.tokens == []


def test_a_narrow_lens_puts_its_side_column_under_the_map(qtbot, view):
    from PySide6.QtWidgets import QBoxLayout

    assert view.body.direction() == QBoxLayout.Direction.LeftToRight
    view.resize(450, 600)
    qtbot.waitUntil(lambda: view.body.direction() == QBoxLayout.Direction.TopToBottom)
    qtbot.waitUntil(lambda: view.side.width() > 400 and view.plot.width() > 400)
    view.resize(1100, 520)
    qtbot.waitUntil(lambda: view.body.direction() == QBoxLayout.Direction.LeftToRight)


def test_a_word_of_several_tokens_targets_its_first(smollm_session):
    from gui.lens_dock import read_lens

    session = smollm_session
    word = " antidisestablishmentarianism"
    ids = smollm.encode(word)
    assert len(ids) > 1
    lens, prompt, note = read_lens(session, smollm.encode("I am"), 0, word, ())
    assert lens.target == ids[0] and list(prompt) == list(smollm.encode("I am"))
    assert note == f"“{word}” is {len(ids)} tokens; its first is the target."


def test_sub_steps_keep_the_output_row_in_view(view, lenses):
    """Review: ticking Sub-steps doubled the rows but kept the old range, hiding the
    top (output) rows."""
    lens = lenses[0]
    view.substeps.setChecked(True)
    top = view.plot.getViewBox().viewRange()[1][1]
    assert len(view.shown) == len(lens.rows) and top >= len(view.shown) - 0.5
