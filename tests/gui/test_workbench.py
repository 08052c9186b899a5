"""The workbench as a user drives it: click layers, toggle units, watch accuracy."""

import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw
from PySide6.QtCore import Qt

from core.ablation import Ablation
from core.session import Session

WAIT = 20_000


def _click_tile(qtbot, grid, unit: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    tile = grid.tiles[unit]

    def view_pos():
        return grid.grid.mapFromScene(tile.mapToScene(tile.boundingRect().center()))

    # The graphics layout settles on a later event-loop turn: click once the tile is
    # really under the point, as a person would.
    qtbot.waitUntil(lambda: tile in grid.grid.items(view_pos()), timeout=WAIT)
    qtbot.mouseClick(grid.grid.viewport(), Qt.MouseButton.LeftButton, modifier, view_pos())


def _most_important(site: str, n: int) -> tuple[int, float]:
    session = Session()
    session.open_model("digits_cnn")
    drops = [session.evaluate([Ablation(site, (u,))]).score for u in range(n)]
    return int(np.argmin(drops)), float(min(drops))


def test_conv_layer_shows_one_tile_per_channel(qtbot, make_window):
    window = make_window(layer="conv1")
    assert len(window.channel_grid.tiles) == 16
    with qtbot.waitSignal(window.channel_grid.drawn, timeout=WAIT):
        window.model_tree.select("conv2")
    assert len(window.channel_grid.tiles) == 32
    assert window.views.currentWidget() is window.channel_grid
    assert window.channel_grid.data.shape == (32, 8, 8)


def test_dense_layer_shows_neuron_bars(qtbot, make_window):
    window = make_window()
    with qtbot.waitSignal(window.neuron_view.drawn, timeout=WAIT):
        window.model_tree.select("fc1")
    assert window.views.currentWidget() is window.neuron_view
    assert len(window.neuron_view.values) == 64
    with qtbot.waitSignal(window.neuron_view.drawn, timeout=WAIT):
        window.model_tree.select("fc2")
    assert window.neuron_view.labels == tuple(str(i) for i in range(10))


def test_plain_click_enlarges_a_tile(qtbot, make_window):
    window = make_window(layer="conv1")
    grid = window.channel_grid
    with qtbot.waitSignal(grid.unit_selected, timeout=WAIT):
        _click_tile(qtbot, grid, 6)
    assert grid.selected == 6
    np.testing.assert_array_equal(grid.detail_image.image, grid.data[6])
    assert window.workbench.ablations == ()


def test_ctrl_click_toggles_accuracy_and_reset_restores(qtbot, make_window):
    unit, expected = _most_important("conv1", 16)
    window = make_window(layer="conv1")
    panel = window.accuracy_panel
    baseline = panel.current()
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        _click_tile(qtbot, window.channel_grid, unit, Qt.KeyboardModifier.ControlModifier)
    assert panel.current() == pytest.approx(expected)
    assert panel.current() < baseline
    assert panel.baseline() == pytest.approx(baseline)
    assert f"conv1:{unit} (zero)" in panel.headline.text() or "→" in panel.headline.text()
    qtbot.waitUntil(lambda: unit in window.channel_grid.ablated, timeout=WAIT)
    assert window.channel_grid._titles[unit].toPlainText() == f"{unit} off"
    assert not window.channel_grid.data[unit].any()  # the drawn map is really zeroed
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        window.ablation_panel.reset.click()
    assert panel.current() == pytest.approx(baseline)
    assert window.workbench.ablations == ()


def test_checkbox_list_and_mean_mode(qtbot, make_window):
    window = make_window(layer="fc1")
    panel, abl = window.accuracy_panel, window.ablation_panel
    assert abl.units.count() == 64
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        abl.units.item(3).setCheckState(Qt.CheckState.Unchecked)
    assert window.workbench.ablations == (Ablation("fc1", (3,)),)
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        abl.mode_box.setCurrentIndex(abl.mode_box.findData("mean"))
    assert window.workbench.ablations == (Ablation("fc1", (3,), "mean"),)
    assert "fc1:3 (mean)" in [abl.active.item(i).text() for i in range(abl.active.count())]


def test_cancelled_evaluation_leaves_ui_usable(qtbot, make_window):
    window = make_window(layer="conv1")
    panel, worker = window.accuracy_panel, window.worker
    release = threading.Event()

    def blocker(token=None):
        assert threading.current_thread() is not threading.main_thread()
        release.wait(10)

    worker.submit("test-block", blocker, on_done=print)
    window.workbench.toggle_unit("conv1", 5)  # queued behind the blocker
    with qtbot.waitSignal(panel.updated, raising=False, timeout=300) as early:
        pass
    assert not early.signal_triggered
    with qtbot.waitSignal(window.workbench.evaluation_cancelled, timeout=WAIT):
        window.status_panel.cancel.click()
        release.set()
    assert "cancelled" in panel.detail.text().lower()
    # Still usable: the next toggle evaluates normally.
    with qtbot.waitSignal(panel.updated, timeout=WAIT):
        window.workbench.toggle_unit("conv1", 7)
    assert panel.result.ablations == (Ablation("conv1", (5, 7)),)


def test_bad_image_shows_error_and_keeps_input(qtbot, make_window, tmp_path):
    window = make_window()
    before = window.input_panel.source.text()
    bad = tmp_path / "not_really.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with qtbot.waitSignal(window.workbench.error, timeout=WAIT):
        window.input_panel.image_file_chosen.emit(str(bad))
    assert "not_really.png" in window.message_bar.message()
    assert window.input_panel.source.text() == before
    assert window.workbench.input is None  # still the dataset example


def test_image_file_is_converted_and_predicted(qtbot, make_window, tmp_path):
    window = make_window()
    path = tmp_path / "one.png"
    img = Image.new("RGB", (120, 160), "white")
    ImageDraw.Draw(img).line([(60, 20), (60, 140)], fill="black", width=14)
    img.save(path)
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=WAIT):
        window.input_panel.image_file_chosen.emit(str(path))
    assert window.workbench.input is not None
    assert "inverted" in window.input_panel.steps.text()
    assert window.prediction.headline.text().startswith("Prediction: 1")


@pytest.mark.parametrize("layer,rows", [("conv2", 32 * 8 * 8), ("fc1", 64)])
def test_export_view_writes_png_and_csv(qtbot, make_window, tmp_path, layer, rows):
    window = make_window(layer=layer)
    png, table = window.views.export(str(tmp_path / "view.png"))
    assert png.stat().st_size > 5_000
    lines = table.read_text().splitlines()
    assert len(lines) == rows + 1 and lines[0].startswith("layer,")
