"""The unit page, "What does this unit do?" (issue #13): opened from every layer view by
a double-click or the context menu, Back/Next through the layer, Switch off/on, an
example loads as the input, a bad request says why, and the command line opens it."""

import csv

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QFontMetrics, QImage, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QFileDialog

from core.ablation import Ablation
from gui.views.example_strip import CELL_MIN
from gui.views.unit_colours import sig
from gui.views.unit_menu import ACTION
from tests.test_main import _run, _screenshot

WAIT = 60_000


def _settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def _rect(window, widget) -> QRect:
    return QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())


def _tile_pos(grid, unit: int):
    tile = grid.tiles[unit]
    return lambda: grid.grid.mapFromScene(tile.mapToScene(tile.boundingRect().center()))


def _on_tile(qtbot, grid, unit: int):
    """The tile's position once the graphics layout has settled under it."""
    pos = _tile_pos(grid, unit)
    qtbot.waitUntil(lambda: grid.tiles[unit] in grid.grid.items(pos()), timeout=WAIT)
    return pos()


def double_click(viewport, pos) -> None:
    """A double-click as the window system delivers it: press, release, double-click,
    release (QTest.mouseDClick leaves out the first press and pyqtgraph then sees none)."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    where, glob = QPointF(pos), QPointF(viewport.mapToGlobal(pos))
    for kind, buttons in ((QEvent.Type.MouseButtonPress, left),
                          (QEvent.Type.MouseButtonRelease, none),
                          (QEvent.Type.MouseButtonDblClick, left),
                          (QEvent.Type.MouseButtonRelease, none)):
        QApplication.sendEvent(viewport, QMouseEvent(kind, where, glob, left, buttons,
                                                     Qt.KeyboardModifier.NoModifier))


def _open_by_double_click(qtbot, window, viewport, pos):
    with qtbot.waitSignal(window.unit_pages.shown, timeout=WAIT) as blocker:
        double_click(viewport, pos)
    return blocker.args[0]


def _same_page(page, expected) -> None:
    assert (page.site, page.unit, page.n_units) == (expected.site, expected.unit,
                                                    expected.n_units)
    np.testing.assert_array_equal(page.top.indices, expected.top.indices)
    np.testing.assert_array_equal(page.bottom.indices, expected.bottom.indices)
    np.testing.assert_allclose(page.top.values, expected.top.values)


def test_double_click_on_a_channel_opens_its_page_beside_the_layer_view(
        qtbot, make_window, compute):
    window = make_window(layer="conv2")
    grid = window.channel_grid
    page = _open_by_double_click(qtbot, window, grid.grid.viewport(), _on_tile(qtbot, grid, 19))
    # The single click of the double-click still enlarges the tile, as before.
    assert grid.selected == 19
    _same_page(page, compute.unit_page("conv2", 19))
    view = window.unit_page_view
    assert view.title.text() == "conv2 · channel 19 of 32"
    assert window.unit_page_dock.isVisible()
    assert view.top_images.isVisible() and not view.top_tokens.isVisible()
    np.testing.assert_array_equal(view.top_images.strip.indices, page.top.indices)
    np.testing.assert_array_equal(view.bottom_images.strip.indices, page.bottom.indices)
    assert view.top_images.strip.maps.shape == (16, 8, 8)   # the map over each picture
    # Beside the layer view, not over it.
    assert not _rect(window, window.unit_page_dock).intersects(_rect(window, window.views))
    np.testing.assert_array_equal(view.histogram.bars.opts["height"], page.histogram)
    assert list(view.effect.axis.tokens) == list(page.effect.names)
    assert view.effect_caption.text().startswith(page.effect.caption)
    # Its weights: a 3x3 kernel onto each of pool1's 16 channels.
    assert page.weights is not None and page.weights.kind == "kernels"
    assert view.weights.isVisible() and len(view.weights.tile_rects(view.weights.width())) == 16


def test_next_and_back_step_through_the_layer(qtbot, make_window):
    window = make_window(layer="conv2")
    pages, view = window.unit_pages, window.unit_page_view
    _settle()
    side = window.side_dock.width()
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        pages.open("conv2", 19)
    _settle()
    # The page takes its room from the layer view, not from the accuracy panel.
    assert abs(window.side_dock.width() - side) <= 12
    with qtbot.waitSignal(pages.shown, timeout=WAIT) as blocker:
        view.next.click()
    assert (blocker.args[0].site, blocker.args[0].unit) == ("conv2", 20)
    assert view.title.text() == "conv2 · channel 20 of 32"
    with qtbot.waitSignal(pages.shown, timeout=WAIT) as blocker:
        view.back.click()
    assert blocker.args[0].unit == 19 and view.back.isEnabled() and view.next.isEnabled()
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        pages.open("conv2", 31)
    assert not view.next.isEnabled() and view.back.isEnabled()
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        pages.open("conv2", 0)
    assert not view.back.isEnabled() and view.next.isEnabled()
    # Closed: the layer view gets the room back.
    view.close_button.click()
    _settle()
    assert not window.unit_page_dock.isVisible() and pages.page is None
    assert abs(window.side_dock.width() - side) <= 2


def test_switch_off_on_the_page_matches_evaluate_and_follows_the_ablations(
        qtbot, make_window, compute):
    window = make_window(layer="conv2")
    pages, view, panel = window.unit_pages, window.unit_page_view, window.accuracy_panel
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        pages.open("conv2", 19)
    assert view.switch.text() == "Switch off"
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        view.switch.click()
    assert window.workbench.ablations == (Ablation("conv2", (19,)),)
    assert view.switch.text() == "Switch on"
    expected = compute.evaluate((Ablation("conv2", (19,)),))
    assert panel.result.score == pytest.approx(expected.score)
    assert f"{100 * expected.score:.1f}%" in panel.headline.text()
    # Switched on again elsewhere (Reset): the page's button follows.
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        window.ablation_panel.reset.click()
    assert view.switch.text() == "Switch off"
    # And Ctrl+click in the grid marks it too.
    grid = window.channel_grid
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        qtbot.mouseClick(grid.grid.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.ControlModifier, _on_tile(qtbot, grid, 19))
    assert view.switch.text() == "Switch on"


# A popup menu on the offscreen platform: it cannot raise it or grab the keyboard.
@pytest.mark.qt_log_ignore("This plugin does not support (raise|grabbing the keyboard)")
def test_the_context_menu_opens_the_page_and_an_example_loads_as_the_input(
        qtbot, make_window):
    window = make_window(layer="conv2")
    grid = window.channel_grid
    qtbot.mouseClick(grid.grid.viewport(), Qt.MouseButton.RightButton,
                     Qt.KeyboardModifier.NoModifier, _on_tile(qtbot, grid, 7))
    menu = grid.page_requests.menu
    assert menu is not None and [a.text() for a in menu.actions()] == [ACTION]
    with qtbot.waitSignal(window.unit_pages.shown, timeout=WAIT) as blocker:
        menu.actions()[0].trigger()
    menu.close()
    assert (blocker.args[0].site, blocker.args[0].unit) == ("conv2", 7)
    strip = window.unit_page_view.top_images
    _settle()
    wanted = int(blocker.args[0].top.indices[2])
    with qtbot.waitSignal(window.workbench.sample_ready, timeout=WAIT) as loaded:
        qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         strip.cell_centre(2))
    assert loaded.args[0].index == wanted == window.workbench.sample_index


def test_a_neuron_bar_opens_its_page_and_a_bad_unit_says_why(qtbot, make_window, compute):
    window = make_window(layer="fc1")
    view = window.neuron_view
    qtbot.waitUntil(lambda: view.site == "fc1", timeout=WAIT)
    _settle()
    vb = view.plot.getPlotItem().vb
    pos = view.plot.mapFromScene(vb.mapViewToScene(QPointF(3, 0.0)))
    page = _open_by_double_click(qtbot, window, view.plot.viewport(), pos)
    _same_page(page, compute.unit_page("fc1", 3))
    assert window.unit_page_view.title.text() == "fc1 · neuron 3 of 64"
    # fc1 feeds the output layer (through its ReLU): its effect is its direct weights.
    assert page.effect.kind == "direct weights"
    with qtbot.waitSignal(window.workbench.error, timeout=WAIT) as error:
        window.unit_pages.open("fc1", 99)
    assert error.args[0] == "fc1 has 64 neurons (0–63); there is no neuron 99."
    assert window.message_bar.isVisible()
    # The page that was open stays as it was.
    assert window.unit_pages.page is page


def test_feature_visualisation_shows_the_optimised_input_beside_the_top_examples(
        qtbot, make_window):
    window = make_window(layer="conv2")
    pages, view = window.unit_pages, window.unit_page_view
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        pages.open("conv2", 19)
    assert view.look_for.isVisible()
    with qtbot.waitSignal(pages.looked, timeout=WAIT) as blocker:
        view.look_for.click()
    vis = blocker.args[0]
    assert view.top_images.extra is not None
    assert f"{sig(vis.activation)} vs dataset max {sig(vis.dataset_max)}" in \
        view.look_note.text()
    # Another model closes the page: its units are gone.
    with qtbot.waitSignal(window.workbench.model_opened, timeout=WAIT):
        window.workbench.open_model("induction_transformer")
    assert pages.page is None and not window.unit_page_dock.isVisible()


def test_heads_and_sequence_features_open_pages_with_tokens(qtbot, twindow, compute):
    window, attention = twindow, twindow.attention_view
    tile = attention.tiles[1]
    grid = attention.grid
    def pos():
        return grid.mapFromScene(tile.mapToScene(tile.boundingRect().center()))

    qtbot.waitUntil(lambda: tile in grid.items(pos()), timeout=WAIT)
    page = _open_by_double_click(qtbot, window, grid.viewport(), pos())
    assert (page.site, page.unit) == ("block1.attn.heads", 1)
    view = window.unit_page_view
    assert view.title.text() == "block1.attn · head 1 of 4"
    assert view.top_tokens.isVisible() and not view.top_images.isVisible()
    assert not view.look_for.isVisible()   # nothing to optimise in a token model
    # The head grid marks the page's head, as a click on its tile does.
    with qtbot.waitSignal(window.unit_pages.shown, timeout=WAIT):
        window.unit_pages.open("block1.attn.heads", 2)
    assert attention.selected == 2
    assert page.weights is not None and page.weights.kind == "circuits"
    # A sequence feature (a column of the embedding's heat map).
    sequence = window.views.sequence_view
    with qtbot.waitSignal(sequence.drawn, timeout=WAIT):
        window.model_tree.select("embed")
    _settle()
    image = sequence.image
    scene = image.mapToScene(QPointF(5.5, 2.5))
    at = sequence.plot.mapFromScene(scene)
    page = _open_by_double_click(qtbot, window, sequence.plot.viewport(), at)
    # The compute process has this window's model open.
    _same_page(page, compute.unit_page("embed", 5))


def test_the_page_fits_a_1024x640_window(qtbot, make_window):
    window = make_window(layer="conv2")
    window.resize(1024, 640)
    _settle()
    with qtbot.waitSignal(window.unit_pages.shown, timeout=WAIT):
        window.unit_pages.open("conv2", 19)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    _settle()
    assert (window.width(), window.height()) == (1024, 640)
    view = window.unit_page_view
    body = view.scroll.widget()
    # Nothing is cut off on the right: the page is as wide as its scroll area.
    assert body.width() <= view.scroll.viewport().width()
    for button in (view.back, view.next, view.switch, view.close_button):
        assert button.visibleRegion().boundingRect() == button.rect()
    assert not _rect(window, window.unit_page_dock).intersects(_rect(window, window.views))


def test_the_command_line_opens_a_unit_page_for_the_screenshot(tmp_path):
    proc = _screenshot(tmp_path, "--model", "digits_cnn", "--unit", "conv2:19", "--size",
                       "1024x640")
    assert "error" not in proc.stdout
    from PIL import Image

    with Image.open(tmp_path / "shot.png") as shot:
        assert shot.size == (1024, 640)
    bad = _run("--model", "digits_cnn", "--unit", "conv2:99", "--screenshot",
               str(tmp_path / "bad.png"))
    assert bad.returncode == 2
    assert "conv2 has 32 channels (0–31); there is no channel 99." in bad.stdout


def _rows(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_export_saves_the_whole_page_as_png_and_what_it_shows_as_csv(
        qtbot, make_window, tmp_path, monkeypatch):
    window = make_window(layer="conv2")
    pages, view = window.unit_pages, window.unit_page_view
    with qtbot.waitSignal(pages.shown, timeout=WAIT) as blocker:
        pages.open("conv2", 19)
    page = blocker.args[0]
    _settle()
    assert view.export_button.isVisible() and view.export_button.isEnabled()
    written = view.export(str(tmp_path / "page.png"))
    names = [p.name for p in written]
    assert names == ["page.png", "page.csv", "page-histogram.csv", "page-means.csv",
                     "page-effect.csv"]
    # The whole page, the part scrolled out of view too.
    shot = QImage(str(written[0]))
    body = view.scroll.widget()
    assert (shot.width(), shot.height()) == (body.width(), body.height())
    assert shot.height() > view.scroll.viewport().height()
    examples = _rows(written[1])
    assert examples[0] == ["strip", "rank", "example", "value", "position", "label",
                           "prediction"]
    top = [r for r in examples[1:] if r[0] == "top"]
    bottom = [r for r in examples[1:] if r[0] == "bottom"]
    assert len(top) == len(page.top.indices) and len(bottom) == len(page.bottom.indices)
    for rank, row in enumerate(top):
        assert int(row[1]) == rank + 1 and int(row[2]) == int(page.top.indices[rank])
        assert float(row[3]) == pytest.approx(float(page.top.values[rank]), rel=1e-5)
        assert int(row[4]) == int(page.top.positions[rank])
        assert row[5] == str(int(page.top.labels[rank]))   # the digits' names
        assert row[6] == str(int(page.top.predicted[rank]))
    assert [int(r[2]) for r in bottom] == [int(i) for i in page.bottom.indices]
    histogram = _rows(written[2])
    assert histogram[0] == ["bin low", "bin high", "count"]
    assert [int(r[2]) for r in histogram[1:]] == [int(n) for n in page.histogram]
    assert float(histogram[1][0]) == pytest.approx(float(page.edges[0]), rel=1e-5)
    assert float(histogram[-1][1]) == pytest.approx(float(page.edges[-1]), rel=1e-5)
    means = _rows(written[3])
    assert [r[0] for r in means[1:]] == list(page.group_names)
    np.testing.assert_allclose([float(r[1]) for r in means[1:]], page.group_means,
                               rtol=1e-5)
    effect = _rows(written[4])
    assert [r[0] for r in effect[1:]] == list(page.effect.names)
    np.testing.assert_allclose([float(r[1]) for r in effect[1:]], page.effect.values,
                               rtol=1e-5, atol=1e-9)
    # The button asks where (the file dialog, as every view's Export… does).
    chosen = tmp_path / "chosen.png"
    asked = []

    def dialog(parent, title, name, filters):
        asked.append(name)
        return str(chosen), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    view.export_button.click()
    assert asked == ["conv2-channel-19.png"]
    assert chosen.exists() and (tmp_path / "chosen.csv").exists()
    assert (tmp_path / "chosen-histogram.csv").exists()


def test_what_does_it_look_for_keeps_the_page_where_it_was(qtbot, make_window):
    window = make_window(layer="conv2")
    pages, view = window.unit_pages, window.unit_page_view
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        pages.open("conv2", 19)
    _settle()
    bar = view.scroll.verticalScrollBar()
    assert bar.value() == 0
    # Clicked, the button has the focus; disabled while it runs, it gives the focus to
    # the next widget that takes it, and the page scrolled to show that one: the chart
    # under "Least active examples". (Export… is next now: out of the way, the charts
    # are, as they were.)
    view.export_button.setEnabled(False)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT)
    view.look_for.setFocus()
    assert view.look_for.hasFocus()
    with qtbot.waitSignal(pages.looked, timeout=WAIT):
        view.look_for.click()
        _settle()
        assert bar.value() == 0 and not view.look_for.isEnabled()
    _settle()
    assert bar.value() == 0
    # The optimised input is in view.
    strip = view.top_images
    cell = strip.cell_rects(strip.width())[0]
    top = strip.mapTo(view.scroll.widget(), cell.topLeft()).y()
    bottom = strip.mapTo(view.scroll.widget(), cell.bottomLeft()).y()
    assert 0 <= top and bottom <= bar.value() + view.scroll.viewport().height()


def test_looking_for_what_a_unit_that_never_fires_looks_for_says_so(qtbot, make_window):
    window = make_window(layer="conv2")
    pages, view = window.unit_pages, window.unit_page_view
    with qtbot.waitSignal(pages.shown, timeout=WAIT) as blocker:
        pages.open("conv2", 16)
    page = blocker.args[0]
    assert page.dead and page.maximum <= 0
    with qtbot.waitSignal(pages.looked, timeout=WAIT) as looked:
        view.look_for.click()
    vis = looked.args[0]
    text = view.look_note.text()
    assert "beats every example" not in text
    assert f"It never fires on the data (best example's mean {sig(vis.dataset_max)}); " \
           f"the optimised input reaches {sig(vis.activation)}" in text
    if vis.activation <= 0:
        assert "still below zero, so it does not fire either" in text
        assert view.top_images.extra.colour == "#9a9a9a"   # not lit up: grey
    else:
        assert "above zero" in text


def test_the_mouse_wheel_over_a_chart_scrolls_the_page(qtbot, make_window):
    window = make_window(layer="conv2")
    pages, view = window.unit_pages, window.unit_page_view
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        pages.open("conv2", 19)
    _settle()
    bar = view.scroll.verticalScrollBar()
    for chart in (view.histogram, view.means, view.effect):
        assert chart.focusPolicy() == Qt.FocusPolicy.NoFocus
        assert not any(chart.getViewBox().state["mouseEnabled"])
        x_range = chart.getViewBox().viewRange()[0]
        before = bar.value()
        target = chart.viewport()
        centre = QPointF(target.rect().center())
        event = QWheelEvent(centre, QPointF(target.mapToGlobal(centre.toPoint())),
                            QPoint(0, 0), QPoint(0, -120), Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QApplication.sendEvent(target, event)
        _settle()
        assert bar.value() > before, chart
        np.testing.assert_allclose(chart.getViewBox().viewRange()[0], x_range)


def test_the_layer_view_enlarges_the_unit_the_page_shows(qtbot, make_window):
    window = make_window(layer="conv2")
    pages, view, grid = window.unit_pages, window.unit_page_view, window.channel_grid
    assert grid.selected == 0
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        pages.open("conv2", 19)
    assert grid.selected == 19 and grid.detail_title.text().startswith("channel 19:")
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        view.next.click()
    assert grid.selected == 20 and grid.detail_title.text().startswith("channel 20:")
    with qtbot.waitSignal(pages.shown, timeout=WAIT):
        view.back.click()
    assert grid.selected == 19


def test_values_have_three_significant_digits_and_captions_fit_their_cells(
        qtbot, make_window):
    assert [sig(v) for v in (7, 7.693, -0.07441, 123.4, 0.5, 0)] == \
        ["7.00", "7.69", "-0.0744", "123", "0.500", "0.00"]
    window = make_window(layer="conv2")
    window.resize(1024, 640)
    _settle()
    pages, view = window.unit_pages, window.unit_page_view
    with qtbot.waitSignal(pages.shown, timeout=WAIT) as blocker:
        pages.open("conv2", 16)
    page = blocker.args[0]
    _settle()
    assert f"at most {sig(page.maximum)}." in view.summary.text()
    for strip in (view.top_images, view.bottom_images):
        metrics = QFontMetrics(strip.font_small)
        cells = strip.cell_rects(strip.width())
        assert min(c.width() for c in cells) >= CELL_MIN
        for i in range(len(strip.strip.indices)):
            pair, value = strip.captions(i)
            # One form at every width: "label 2 · says 2", never "2 → 2".
            assert pair == f"label {int(strip.strip.labels[i])} · says " \
                           f"{int(strip.strip.predicted[i])}"
            assert metrics.horizontalAdvance(pair) <= CELL_MIN
            number, index = value.split(" ")
            assert number == sig(strip.strip.values[i])
            assert metrics.horizontalAdvance(number + index) + 4 <= CELL_MIN


def test_an_output_neuron_is_named_by_its_class(qtbot, make_window):
    window = make_window(layer="fc2")
    with qtbot.waitSignal(window.unit_pages.shown, timeout=WAIT):
        window.unit_pages.open("fc2", 3)
    assert window.unit_page_view.title.text() == "fc2 · neuron 3 of 10 (class 3)"
    with qtbot.waitSignal(window.unit_pages.shown, timeout=WAIT):
        window.unit_pages.open("fc1", 3)   # 64 neurons, not the output layer
    assert window.unit_page_view.title.text() == "fc1 · neuron 3 of 64"


def test_a_sentence_encoders_means_are_not_titled_as_cosines(qtbot, make_window):
    window = make_window("minilm", layer="encoder.layer.0.attention.self")
    view = window.unit_page_view
    with qtbot.waitSignal(window.unit_pages.shown, timeout=WAIT) as blocker:
        window.unit_pages.open("encoder.layer.0.attention.self.heads", 2)
    page = blocker.args[0]
    assert "cosine" in page.group_label    # the accuracy chart's words for its groups
    assert view.means_title.text() == f"Its mean per sentence ({page.statistic})"
    assert "cosine" not in view.means.getAxis("bottom").labelText
    # Closed mid-evaluation, the slow encoder would miss the cancel and the watchdog
    # would replace the compute process under the next test.
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)


def test_the_page_opens_narrow_enough_to_leave_the_layer_view_its_tiles(
        qtbot, make_window):
    window = make_window(layer="conv2")
    assert (window.width(), window.height()) == (1440, 900)
    with qtbot.waitSignal(window.unit_pages.shown, timeout=WAIT):
        window.unit_pages.open("conv2", 19)
    _settle()
    assert window.unit_page_dock.width() <= min(440, 0.3 * window.width()) + 4, \
        window.unit_page_dock.width()
    # The grid re-flows its tiles to its new, narrower shape (they were 21 px wide).
    grid = window.channel_grid

    def side() -> float:
        return min(min(b.sceneBoundingRect().width(), b.sceneBoundingRect().height())
                   for b in grid._boxes)

    qtbot.waitUntil(lambda: side() >= 36, timeout=WAIT)
