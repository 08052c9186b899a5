"""The every-head overview: its maps, read-out and clicks on made-up scores; the window's
Analyse › Every head… on the induction transformer; and SmolLM2 through the compute
process — the task chooser re-evaluates, a click opens that head."""

import numpy as np
import pytest
from PySide6.QtCore import Qt

from core.analysis.attention import HeadScores
from core.analysis.evaluate import Sweep
from core.zoo import smollm
from gui.views.head_overview_view import HeadOverviewView, kv_caption, kv_groups

WAIT = 180_000


def _scores(layers=30, heads=9):
    rng = np.random.default_rng(0)
    sites = tuple(f"block{i}.attn.pattern" for i in range(layers))
    return HeadScores(sites, *(rng.random((layers, heads)) for _ in range(3)))


def test_key_value_groups_are_named():
    assert kv_groups(9, 3) == [(0, 2, 0), (3, 5, 1), (6, 8, 2)]
    assert kv_caption(9, 3) == "heads 0–2 share KV 0 · 3–5 share KV 1 · 6–8 share KV 2"
    assert kv_caption(4, 1) == ""


def test_maps_hover_and_click(qtbot):
    view = HeadOverviewView()
    qtbot.addWidget(view)
    view.resize(1200, 400)
    view.show()
    view.set_group(3)
    scores = _scores()
    view.set_scores(scores)
    assert np.array_equal(view.maps[1].image.values, scores.induction.astype(np.float32))
    assert view.kv_label.text().startswith("heads 0–2 share KV 0")
    top = view.maps[0].plot.getAxis("top")
    assert [label for _, label in top._tickLevels[0]] == ["KV 0", "KV 1", "KV 2"]
    text = view.numbers(12, 4)
    assert text.startswith("L12 H4 (KV 1)") and f"{scores.induction[12, 4]:.2f}" in text

    baseline = 0.72
    score = np.full(9, baseline)
    score[4] = 0.60
    sweeps = [Sweep(f"block{i}.attn.heads", tuple(range(9)), "zero",
                    score if i == 12 else np.full(9, baseline), np.zeros(9), baseline)
              for i in range(30)]
    view.set_importance(sweeps)
    assert view.lost[12, 4] == pytest.approx(12.0) and np.nanmax(view.lost) == view.lost[12, 4]
    assert "L12 H4" in view.caption.text()
    assert "off: 60.0% (-12.0 points)" in view.numbers(12, 4)

    with qtbot.waitSignal(view.head_clicked) as clicked:
        view.click(12, 4)
    assert clicked.args == ["block12.attn", 4]


def test_a_tall_dock_lays_the_maps_out_two_by_two(qtbot):
    view = HeadOverviewView()
    qtbot.addWidget(view)
    view.show()
    view.resize(1200, 300)
    qtbot.waitUntil(lambda: view._columns == 4)
    view.resize(300, 700)
    qtbot.waitUntil(lambda: view._columns == 2)


def test_every_head_in_the_window(qtbot, twindow):
    heads = twindow.heads
    assert heads.action in twindow.analysis.menu.actions()
    heads.action.trigger()
    qtbot.waitUntil(lambda: heads.view.scores is not None, timeout=WAIT)
    assert heads.dock.isVisible()
    assert not heads.view.task_box.isVisibleTo(heads.view)   # no tasks for this model
    heads.view.click(0, 1)
    qtbot.waitUntil(lambda: twindow.workbench.layer == "block0.attn", timeout=WAIT)
    qtbot.waitUntil(lambda: twindow.attention_view.site == "block0.attn.pattern",
                    timeout=WAIT)
    assert twindow.attention_view.selected == 1


@pytest.fixture
def lm_window(qtbot):
    """SmolLM2 in the real window on a compute process of its own (a longer wait than
    make_window's: the model's first evaluation is a dozen forwards on 2 cores). Not the
    shared one: a SmolLM job still running in it when the test ends made the next tests'
    windows time out in one CI run; this process is ended with the window."""
    from core.remote import RemoteSession
    from gui.app import configure_pyqtgraph
    from gui.main_window import MainWindow

    configure_pyqtgraph()
    remote = RemoteSession()
    window = MainWindow(remote)
    qtbot.addWidget(window)
    window.workbench.layer = "block3.attn"
    window.show()
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.open_model("smollm2-135m")
    yield window
    window.close()
    remote.close()


@pytest.mark.skipif(not smollm.available(), reason="the smollm extra is not installed")
def test_smollm_tasks_and_heads_through_the_compute_process(qtbot, lm_window):
    window = lm_window
    heads, wb = window.heads, window.workbench
    heads.open()
    qtbot.waitUntil(lambda: heads.view.scores is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: heads.view.task_box.count() == 3, timeout=WAIT)
    assert heads.view.current_task() == "induction"
    assert heads.view.kv_label.text().startswith("heads 0–2 share KV 0")
    # Induction heads of SmolLM2 show up on its repeated random tokens.
    assert heads.view.scores.induction.max() > 0.5

    box = heads.view.task_box
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        box.setCurrentIndex(box.findData("names"))
        box.activated.emit(box.currentIndex())
    assert wb.info.dataset_name == "names (IOI prompts)" and wb.info.dataset_size == 40
    assert window.accuracy_panel.result.score >= 0.9
    qtbot.waitUntil(lambda: heads.view.current_task() == "names", timeout=WAIT)
    # The data changed: the scores are measured again, over the name prompts.
    qtbot.waitUntil(lambda: heads.view.scores is not None, timeout=WAIT)
    assert heads.view.scores.previous_token.shape == (30, 9)

    # The click selects the layer in the tree and keeps the head for its patterns (the
    # capture itself is covered on the induction transformer above).
    heads.view.click(5, 2)
    assert wb.layer == "block5.attn" and window.attention_view.selected == 2
    assert window.model_tree.tree.currentItem().data(0, Qt.ItemDataRole.UserRole) == \
        "block5.attn"
    assert window.message_bar.message() == ""
