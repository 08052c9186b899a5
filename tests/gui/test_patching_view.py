"""Analyse › Activation patching… (issue #14): the view on its own, and a run of the
window on the real compute process (the path users take), streamed, clicked, stopped."""

import numpy as np
import pytest

from core.analysis.patching import PatchExample, position_labels
from core.lm_values import PatchGrid
from core.zoo import smollm
from gui.views import patching_view
from gui.views.patching_view import PENDING, PatchingView

WAIT = 120_000
NAMES = ("When", "␣Mary", "␣and", "␣John", "␣to")


def _grid(kind="resid", done=(0, 2)):
    rows = 3
    cols = 4 if kind == "resid" else 2
    raw = np.full((rows, cols), np.nan)
    score = np.full((rows, cols), np.nan)
    for r in done:
        score[r] = np.linspace(-0.5, 1.0, cols)
        raw[r] = score[r] * 2 - 1
    clean = np.array([0, 1, 3, 4])
    corrupt = np.array([0, 3, 3, 4])
    return PatchGrid(kind, ("a", "b", "c"), ("0", "1", "final"),
                     tuple(f"H{i}" for i in range(cols)) if kind == "heads" else
                     position_labels(clean, corrupt, NAMES), tuple(done), raw, score,
                     1.0, -1.0, 1, 3, clean, corrupt)


@pytest.fixture
def view(qtbot):
    v = PatchingView()
    qtbot.addWidget(v)
    v.names = NAMES
    v.resize(1000, 500)
    v.show()
    return v


def test_cells_are_coloured_around_zero_and_pending_ones_grey(view):
    view.show_grid(_grid())
    image = view.resid.image.image
    assert tuple(image[1, 0]) == PENDING and tuple(image[0, 0]) != PENDING
    # Score 0 sits at the centre of the diverging map; 1 and -1 at its two ends.
    cmap = patching_view.pg.colormap.get(patching_view.DIVERGING)
    got = patching_view.colours(np.array([[0.0, 1.0, -1.0, 2.0]]), 1.0)[0, :, :3]
    want = cmap.map(np.array([0.5, 1.0, 0.0, 1.0]), mode="byte")[:, :3]
    assert np.array_equal(got, want)
    assert view.colour_bar.levels() == (-1.0, 1.0)


def test_positions_are_numbered_and_the_corrupted_token_shown_where_it_differs(view):
    view.show_grid(_grid())
    assert view.resid.bottom.tokens == ["0: When", "1: ␣Mary", "2: ␣John", "3: ␣to"]
    assert view.resid.top.tokens == ["", "␣John", "", ""]
    view.show_grid(_grid("heads"))
    assert view.heads.bottom.tokens == ["H0", "H1"]


def test_hover_reads_the_numbers_and_click_asks_for_computed_cells_only(view, qtbot):
    view.show_grid(_grid())
    view._on_hover("resid", (0, 3, 1.0))
    assert "restored 1.00" in view.hover.text() and "+1.00" in view.hover.text()
    assert "position 3: ␣to" in view.hover.text()
    view._on_hover("resid", (1, 0, float("nan")))
    assert "not computed" in view.hover.text()
    asked = []
    view.cell_requested.connect(lambda *a: asked.append(a))
    view.select("resid", 1, 0)   # a pending row
    view.select("resid", 2, 1)
    assert asked == [("resid", 2, 1)]


def test_examples_fill_the_prompts_and_editing_a_prompt_clears_its_answer(view, qtbot):
    view.set_examples([PatchExample("t", "A b", "A c", " b", " c")])
    assert (view.clean.text(), view.corrupt_answer.text()) == ("A b", " c")
    sent = []
    view.run_requested.connect(lambda *a: sent.append(a))
    qtbot.keyClicks(view.clean, "x")  # typed at the start: the prompt shows its start
    assert view.clean_answer.text() == "" and view.corrupt_answer.text() == " c"
    view.run_button.click()
    assert sent == [("xA b", "A c", "", " c")]
    view.find_example("nothing", "bundled")
    assert view.example.currentText() == "Your own prompts"


def test_a_model_that_is_no_language_model_is_told_so(make_window):
    window = make_window("digits_cnn", "conv1")
    window.patching.action.trigger()
    assert window.patching.dock.isVisible()
    window.patching.run("a", "b")
    assert "needs a language model" in window.patching.view.message.text()


@pytest.mark.skipif(not smollm.available(), reason="the smollm extra is not installed")
def test_patching_streams_in_on_the_compute_process(qtbot, compute):
    from gui.app import configure_pyqtgraph
    from gui.main_window import MainWindow

    configure_pyqtgraph()
    window = MainWindow(compute)
    qtbot.addWidget(window)
    window.workbench.layer = "block0.attn"
    window.show()
    # Opening SmolLM (and its first evaluation) takes longer than the CNN's budget.
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=3 * WAIT):
        window.workbench.open_model("smollm2-135m")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    try:
        _stream_click_stop(window, qtbot)
    finally:
        window.close()


def _stream_click_stop(window, qtbot):
    ctl, view = window.patching, window.patching.view
    # Mismatched lengths: a sentence naming both, before any row is computed.
    ctl.run("The capital of France is", "The capital of the United Kingdom is")
    qtbot.waitUntil(lambda: "same number of tokens" in view.message.text(), timeout=WAIT)
    n = len(smollm.encode("The capital of the United Kingdom is"))
    assert f"is 5 tokens and the corrupted prompt {n}:" in view.message.text()
    assert view.run_button.isEnabled()
    # Answers left empty: the model's own top predictions (" Paris", " Rome").
    with qtbot.waitSignal(ctl.grid_shown, timeout=WAIT) as first:
        ctl.run("The capital of France is", "The capital of Italy is")
    grid = first.args[0]
    assert grid.kind == "resid" and grid.done == (0, 1, 2)
    assert smollm.vocab()[grid.clean_answer] == "␣Paris"
    assert smollm.vocab()[grid.corrupt_answer] == "␣Rome"
    assert np.isnan(grid.score[3:]).all() and grid.score[0, 3] == pytest.approx(1, abs=1e-3)
    with qtbot.waitSignal(ctl.cell_shown, timeout=WAIT) as cell:
        view.select("resid", 0, 3)
    assert cell.args[0].predicted[-1] == grid.clean_answer
    assert "␣Paris" in view.table.item(0, 1).text()
    ctl.cancel()
    qtbot.waitUntil(lambda: "Stopped after" in view.message.text(), timeout=WAIT)
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()
