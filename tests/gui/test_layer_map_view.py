"""Analyse › Map of this layer (issue #13): a PCA scatter of one layer over the data,
coloured by class (grey for no label), misclassified points marked, hover shows the
example, a click loads it as the input, CSV of the coordinates."""

import csv

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from core.unit_values import LayerMap
from gui.views.layer_map_view import NO_LABEL, PALETTE, LayerMapView, label_colours

WAIT = 60_000


def _map(m=40, names=tuple("0123456789"), positions=None) -> LayerMap:
    rng = np.random.default_rng(0)
    labels = np.arange(m) % (len(names) + 1) - 1   # some -1: no label
    predicted = labels.copy()
    predicted[::7] = (predicted[::7] + 1) % len(names)
    return LayerMap("relu3", "PCA", rng.normal(size=(m, 2)).astype(np.float32),
                    np.arange(m) * 3, labels, predicted, np.array([0.34, 0.21]), names,
                    positions)


def _colours(view):
    """Each row's colour, in the map's row order (points are drawn in layers)."""
    rows = view.scatter.data["data"]
    out = [""] * len(rows)
    for row, brush in zip(rows, view.scatter.data["brush"]):
        out[int(row)] = QColor(brush.color()).name()
    return out


def _by_row(view, field):
    rows = np.asarray(view.scatter.data["data"], int)
    values = np.asarray(view.scatter.data[field])
    out = np.empty_like(values)
    out[rows] = values
    return out


def test_the_scatter_draws_every_point_in_its_class_colour(qtbot, tmp_path):
    view = LayerMapView()
    qtbot.addWidget(view)
    view.resize(900, 320)
    view.show()
    examples = np.random.default_rng(1).uniform(size=(50, 8, 8)).astype(np.float32)
    view.set_examples(examples, tuple("0123456789"))
    m = _map()
    view.show_map(m)
    assert len(view.scatter.data) == len(m.coords)
    np.testing.assert_allclose(_by_row(view, "x"), m.coords[:, 0])
    np.testing.assert_allclose(_by_row(view, "y"), m.coords[:, 1])
    expected = [NO_LABEL if v < 0 else PALETTE[v] for v in m.labels]
    assert _colours(view) == [QColor(c).name() for c in expected]
    wrong = (m.labels >= 0) & (m.predicted != m.labels)
    assert list(_by_row(view, "symbol")) == ["x" if w else "o" for w in wrong]
    # Unlabelled points lie under the rest, misclassified ones on top.
    drawn = m.labels[np.asarray(view.scatter.data["data"], int)]
    assert list(drawn[:int((m.labels < 0).sum())]) == [-1] * int((m.labels < 0).sum())
    assert view.plot.getPlotItem().getAxis("bottom").labelText == "PC1 (34 % of variance)"
    assert view.plot.getPlotItem().getAxis("left").labelText == "PC2 (21 % of variance)"
    legend = [name for _, name in view.legend_entries]
    assert legend[:10] == list("0123456789") and "none" in legend
    assert "✕ misclassified" in legend
    # Hover: the thumbnail where the window has it, the label and the prediction.
    for _ in range(3):
        QApplication.processEvents()
    lone = int(np.argmax(np.linalg.norm(m.coords - m.coords.mean(0), axis=1)))
    view._on_moved(view.point_scene_pos(lone))   # the mouse over an outlying point
    assert f"example {int(m.indices[lone])}" in view.preview_text.text()
    view.show_hovered(5)
    assert "example 15" in view.preview_text.text() and not view.preview.pixmap().isNull()
    view.show_hovered(30)   # example 90: no thumbnail in the window
    assert "example 90" in view.preview_text.text() and view.preview.pixmap().isNull()
    _, table = view.export(str(tmp_path / "map.png"))
    with open(table, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(m.coords)
    np.testing.assert_allclose([float(r["pc1"]) for r in rows], m.coords[:, 0], atol=1e-5)
    assert [int(r["example"]) for r in rows] == list(m.indices)


def test_more_labels_than_colours_share_one_for_the_rest():
    labels = np.repeat(np.arange(20), np.arange(20, 0, -1))
    colours, other = label_colours(labels, 20)
    assert other and len(set(colours.values())) == len(PALETTE) - 1
    assert set(colours) == set(range(len(PALETTE) - 1))   # the most common ones


def test_groups_that_are_the_sentences_colour_by_position(qtbot):
    """A sentence encoder's groups are the sentences themselves: a dozen colours for
    some of 40 sentences and "other" for the rest said nothing. Points are coloured by
    their position in the sentence instead, the legend says so, and the hover names no
    group and no prediction the model does not make."""
    view = LayerMapView()
    qtbot.addWidget(view)
    view.resize(900, 320)
    view.show()
    rng = np.random.default_rng(0)
    sentences, length = 40, 9
    positions = np.array([(s, p) for s in range(sentences) for p in range(length)])
    m = LayerMap("encoder.layer.0.attention.self", "PCA",
                 rng.normal(size=(len(positions), 2)).astype(np.float32), positions[:, 0],
                 positions[:, 0], np.full(len(positions), -1),
                 np.array([0.09, 0.08]), tuple(str(i) for i in range(sentences)), positions)
    view.set_examples(None, (), tuple(f"sentence number {i}" for i in range(sentences)))
    view.show_map(m)
    assert view.scheme == "position"
    assert "coloured by position in the sequence" in view.title.text()
    assert "intact model" in view.title.text()
    colours = _colours(view)
    first = {colours[r] for r in np.flatnonzero(positions[:, 1] == 0)}
    last = {colours[r] for r in np.flatnonzero(positions[:, 1] == length - 1)}
    assert len(first) == 1 and len(last) == 1 and first != last
    legend = [name for _, name in view.legend_entries]
    assert legend == ["position 0 (first)", "position 4", "position 8 (last)"]
    assert "position in the sequence" in view.legend_title.text()
    assert "other" not in legend and "none" not in legend
    view.show_hovered(13)
    text = view.preview_text.text()
    assert "sequence 1, position 4" in text
    assert "predicted" not in text and "group:" not in text
    # More groups than colours (not the sentences): by position too.
    m2 = LayerMap("x", "PCA", m.coords, m.indices, (3 * positions[:, 0] + positions[:, 1]) % 20,
                  m.predicted, m.explained, tuple(str(i) for i in range(20)), positions)
    view.show_map(m2)
    assert view.scheme == "position" and "too many groups" in view.legend_title.text()
    # A dozen groups or fewer keep a colour each.
    view.show_map(_map(names=("→2", "→3", "→4"), positions=positions[:40]))
    assert view.scheme == "label" and "coloured by group" in view.title.text()


def test_clicking_a_point_loads_that_example(qtbot, make_window):
    window = make_window(layer="relu3")
    analysis = window.analysis
    # Switched-off units do not change the map: it is the intact model's, and says so.
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.toggle_unit("fc1", 3)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    with qtbot.waitSignal(analysis.map_shown, timeout=WAIT) as shown:
        analysis.map_action.trigger()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    m = shown.args[0]
    view = analysis.layer_map
    assert m.site == "relu3" and len(view.scatter.data) == len(m.coords) == 359
    assert analysis.map_dock.isVisible()
    assert view.title.text().startswith("Map of relu3 (PCA, intact model): 359 examples")
    expected = [QColor(PALETTE[v]).name() for v in m.labels]
    assert _colours(view) == expected
    for _ in range(5):
        QApplication.processEvents()
    row = int(np.flatnonzero(np.asarray(m.indices) == 42)[0])
    where = view.plot.mapFromScene(view.point_scene_pos(row))
    with qtbot.waitSignal(window.workbench.sample_ready, timeout=WAIT) as ready:
        qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    picked = ready.args[0].index
    # The click lands on the point under the mouse (a neighbour may lie on top of it).
    hit = np.flatnonzero(np.asarray(m.indices) == picked)
    assert len(hit)
    assert np.linalg.norm(m.coords[hit[0]] - m.coords[row]) < 0.05 * np.ptp(m.coords[:, 0])
    assert window.workbench.sample_index == picked
    # The point of the input now is ringed.
    qtbot.waitUntil(lambda: len(view.current.data) >= 1, timeout=WAIT)
    np.testing.assert_allclose(view.current.data["x"][0], m.coords[hit[0], 0])


def test_the_map_of_a_transformer_block_is_per_position(qtbot, twindow):
    twindow.model_tree.select("block1")
    with qtbot.waitSignal(twindow.analysis.map_shown, timeout=WAIT) as shown:
        twindow.analysis.map_action.trigger()
    qtbot.waitUntil(lambda: not twindow.worker.busy, timeout=WAIT)
    m = shown.args[0]
    view = twindow.analysis.layer_map
    assert m.site == "block1" and m.positions is not None
    assert len(view.scatter.data) == len(m.coords)
    colours = _colours(view)
    assert all(c == QColor(NO_LABEL).name() for c, v in zip(colours, m.labels) if v < 0)
    assert set(view.scatter.data["symbol"]) == {"o"}   # groups are not predictions
    view.show_hovered(0)
    assert f"sequence {int(m.indices[0])}, position" in view.preview_text.text()
