"""The window keeps the size it is given: long labels elide, the side panel scrolls, the
drawing canvas does not squeeze the model tree, and at 1024×640 every control can be
reached without overlapping another (issue #12)."""

import itertools

from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import QApplication, QDockWidget, QScrollArea, QWidget

from core.ablation import Ablation

WAIT = 30_000


def _settle(qtbot, window) -> None:
    """Let the posted layout requests (and the docks' separators) run: events only."""
    for _ in range(5):
        QApplication.processEvents()


def _rect(window, widget: QWidget) -> QRect:
    return QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())


def _controls(window) -> dict[str, QWidget]:
    panel = window.ablation_panel
    return {"reset": panel.reset, "layer_off": panel.layer_off, "skip": panel.skip,
            "scale_apply": panel.scale_apply, "active": panel.active, "mode": panel.mode_box,
            "units": panel.units}


def _assert_apart(window, widgets: dict[str, QWidget]) -> None:
    rects = {name: _rect(window, w) for name, w in widgets.items()}
    for (a, ra), (b, rb) in itertools.combinations(rects.items(), 2):
        assert not ra.intersects(rb), f"{a} {ra} overlaps {b} {rb}"
    inside = window.rect()
    for name, r in rects.items():
        assert inside.contains(r), f"{name} {r} is outside the window {inside}"


def _reachable(widget: QWidget) -> bool:
    """Scrolled into view if it lives in a scroll area, then wholly on screen."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QScrollArea):
        parent = parent.parentWidget()
    if parent is not None:
        parent.ensureWidgetVisible(widget, 0, 0)
        QApplication.processEvents()
    return widget.isVisible() and widget.visibleRegion().boundingRect() == widget.rect()


def _params_visible(window) -> bool:
    tree = window.model_tree.tree
    header = tree.header()
    return (not tree.isColumnHidden(4) and
            header.sectionViewportPosition(4) + header.sectionSize(4) <=
            tree.viewport().width() and header.sectionViewportPosition(4) >= 0)


def test_ablating_a_whole_conv_layer_at_1024x640_keeps_the_window_and_its_controls(
        qtbot, make_window):
    window = make_window(layer="conv2")
    window.resize(1024, 640)
    _settle(qtbot, window)
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.set_ablations((Ablation("conv2", tuple(range(32))),))
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    _settle(qtbot, window)
    assert (window.width(), window.height()) == (1024, 640)
    assert window.ablation_panel.active.item(0).text() == "conv2:0–31 (zero)"
    controls = _controls(window)
    for name, widget in controls.items():
        assert widget.isVisible() and widget.visibleRegion().boundingRect() == widget.rect(), \
            f"{name} is hidden or cut off"
    _assert_apart(window, controls)


def test_with_the_ablation_table_shown_every_control_is_reachable_and_apart(
        qtbot, make_window):
    window = make_window(layer="conv2")
    window.resize(1024, 640)
    window.experiments_dock.show()
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.set_ablations((Ablation("conv2", tuple(range(32))),))
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    _settle(qtbot, window)
    assert (window.width(), window.height()) == (1024, 640)
    table = window.experiments_dock
    for name, widget in _controls(window).items():
        assert _reachable(widget), f"{name} cannot be scrolled into view"
        visible = QRect(widget.mapTo(window, widget.visibleRegion().boundingRect().topLeft()),
                        widget.visibleRegion().boundingRect().size())
        assert not visible.intersects(_rect(window, table)), f"the table covers {name}"


def test_800x600_shows_the_whole_right_panel(qtbot, make_window):
    window = make_window(layer="conv1")
    window.resize(800, 600)
    _settle(qtbot, window)
    assert (window.width(), window.height()) == (800, 600)
    side = _rect(window, window.side_dock)
    assert window.rect().contains(side), f"right panel {side} is cut off"
    assert side.width() >= 200
    assert _params_visible(window)


def test_draw_canvas_leaves_the_model_dock_and_its_params_column_alone(qtbot, make_window):
    window = make_window(layer="conv1")
    dock = window.findChild(QDockWidget, "Model")
    _settle(qtbot, window)
    before = dock.width()
    assert _params_visible(window)
    window.input_panel.draw_button.click()
    qtbot.waitUntil(window.input_panel.draw.isVisible, timeout=WAIT)
    _settle(qtbot, window)
    assert dock.width() == before
    assert _params_visible(window)
    assert window.width() == 1440
    # Even a dock the user (or a saved layout) made narrow keeps the Params column.
    window.resizeDocks([dock], [200], Qt.Orientation.Horizontal)
    _settle(qtbot, window)
    assert dock.width() <= 230
    assert _params_visible(window)
