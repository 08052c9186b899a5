"""Units that never fire are marked in the views and explained in the accuracy panel;
the hover read-out never outlives the capture it described (issue #12)."""

from PySide6.QtCore import QPoint, QPointF

from core.ablation import Ablation

WAIT = 30_000
CONV1_DEAD = {0, 1, 3, 6, 11, 13}


def _hover_tile(qtbot, grid, unit: int) -> None:
    """Move the mouse onto the middle of tile ``unit``, as a person would."""
    tile = grid.tiles[unit]

    def view_pos():
        return grid.grid.mapFromScene(tile.mapToScene(tile.boundingRect().center()))

    def hover() -> bool:
        # The graphics layout settles on a later event-loop turn: move onto the tile
        # afresh each try, once it is really under the point.
        if tile not in grid.grid.items(view_pos()):
            return False
        qtbot.mouseMove(grid.grid.viewport(), view_pos() + QPoint(0, 2))
        qtbot.mouseMove(grid.grid.viewport(), view_pos())
        return f"channel {unit}" in grid.hover.text()

    qtbot.waitUntil(hover, timeout=WAIT)


def test_conv1_channels_that_never_fire_are_hatched_with_a_legend(qtbot, make_window):
    window = make_window(layer="conv1")
    grid = window.channel_grid
    qtbot.waitUntil(lambda: grid.dead == CONV1_DEAD, timeout=WAIT)
    for unit in range(16):
        assert grid._hatches[unit].isVisible() == (unit in CONV1_DEAD), unit
        assert ("never fires" in grid.tiles[unit].toolTip()) == (unit in CONV1_DEAD)
    assert grid.note.isVisible()
    assert "6 of 16 channels never fire" in grid.note.text()
    assert f"{window.workbench.info.dataset_size} examples" in grid.note.text()
    _hover_tile(qtbot, grid, 3)
    assert "never fires" in grid.hover.text()


def test_fc1_neurons_that_never_fire_are_marked_and_named_on_hover(qtbot, make_window):
    window = make_window(layer="conv1")
    view = window.neuron_view
    with qtbot.waitSignal(view.drawn, timeout=WAIT):
        window.model_tree.select("fc1")
    assert len(view.dead) == 45
    assert "45 of 64 neurons never fire" in view.note.text() and view.note.isVisible()
    # Every dead neuron has a hatched band; no live one does.
    assert sorted(view.dead_bands.opts["x"]) == sorted(view.dead)
    unit = min(view.dead)
    vb = view.plot.getPlotItem().vb

    def hover_bar() -> bool:
        # Where the bar is once the layout has settled; moved onto afresh each try.
        pos = view.plot.mapFromScene(vb.mapViewToScene(QPointF(unit, 0.0)))
        qtbot.mouseMove(view.plot.viewport(), pos + QPoint(0, 3))
        qtbot.mouseMove(view.plot.viewport(), pos)
        return f"neuron {unit}" in view.hover.text()

    qtbot.waitUntil(hover_bar, timeout=WAIT)
    assert "never fires" in view.hover.text()


def test_ablating_a_dead_unit_is_explained_not_left_at_plus_zero(qtbot, make_window):
    window = make_window(layer="fc1")
    panel = window.accuracy_panel
    qtbot.waitUntil(lambda: len(window.neuron_view.dead) == 45, timeout=WAIT)
    unit = min(window.neuron_view.dead)
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        window.workbench.set_ablations((Ablation("fc1", (unit,)),))
    assert panel.result.dead and panel.result.delta == 0
    assert "+0.0 points" not in panel.headline.text()
    words = panel.warning.text()
    assert panel.warning.isVisible()
    assert f"fc1:{unit}" in words and "never fires" in words
    assert "activation function" in words and "cannot change anything" in words


def test_hover_read_out_is_cleared_by_a_new_layer_and_by_reset(qtbot, make_window):
    window = make_window(layer="conv1")
    grid = window.channel_grid
    _hover_tile(qtbot, grid, 5)
    assert "conv1" in grid.hover.text()
    with qtbot.waitSignal(grid.drawn, timeout=WAIT):
        window.model_tree.select("conv2")
    assert "channel 5" not in grid.hover.text() and "value" not in grid.hover.text()
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.set_ablations((Ablation("conv2", (4,)),))
    qtbot.waitUntil(lambda: 4 in grid.ablated, timeout=WAIT)
    _hover_tile(qtbot, grid, 4)
    assert "switched off" in grid.hover.text()
    with qtbot.waitSignal(grid.drawn, timeout=WAIT):
        window.ablation_panel.reset.click()
    assert "switched off" not in grid.hover.text() and "value" not in grid.hover.text()
