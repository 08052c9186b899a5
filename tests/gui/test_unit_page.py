"""The unit page, "What does this unit do?" (issue #13): opened from every layer view by
a double-click or the context menu, Back/Next through the layer, Switch off/on, an
example loads as the input, a bad request says why, and the command line opens it."""

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, QRect, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from core.ablation import Ablation
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
    assert f"{vis.activation:.3g} vs dataset max {vis.dataset_max:.3g}" in view.look_note.text()
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
