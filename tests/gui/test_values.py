"""A model that reads rows of numbers (ModelKind.VALUES, issue #15) in the real window:
a tabular MLP of the user's own class, trained here on seeded synthetic rows — its
input panel, the neuron view of a hidden layer, an ablation whose accuracy equals a
hand-written forward hook's, its unit page, and your own rows for it."""

import numpy as np
import pytest
import torch

from core.ablation import Ablation
from core.kinds import ModelKind
from core.live import prepare
from core.session import Session
from gui.main_window import MainWindow
from tests.gui.conftest import LOAD_TIMEOUT_MS
from tests.gui.tabular_models import synthetic_rows, trained_mlp

NAMES = ("alpha", "beta", "gamma")


@pytest.fixture(scope="module")
def mlp():
    return trained_mlp()


def hooked_accuracy(mlp, rows, labels, units) -> float:
    """Accuracy with ``units`` of the ReLU's output set to zero by a forward hook."""
    def zero(_module, _inputs, output):
        output = output.clone()
        output[:, list(units)] = 0.0
        return output

    handle = mlp.relu.register_forward_hook(zero)
    try:
        with torch.no_grad():
            predicted = mlp(torch.from_numpy(rows)).argmax(dim=1).numpy()
    finally:
        handle.remove()
    return float((predicted == labels).mean())


@pytest.fixture
def values_window(qtbot, mlp):
    rows, labels = synthetic_rows(200, seed=5)
    live = prepare(mlp, rows, labels, NAMES, layer="relu")
    session = Session()
    session.add_live(live.entry, live.opened)
    window = MainWindow(session)
    qtbot.addWidget(window)
    window.workbench.layer = "relu"
    window.show()
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=LOAD_TIMEOUT_MS):
        window.workbench.open_model(live.name)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=LOAD_TIMEOUT_MS)
    yield window, rows, labels
    window.close()


def test_values_input_panel_and_prediction(qtbot, values_window, mlp):
    window, rows, labels = values_window
    panel = window.presenter.values_input
    assert window.workbench.info.kind is ModelKind.VALUES
    assert window.inputs.currentWidget() is panel
    assert window.predictions.currentWidget() is window.prediction
    assert not window.file_menu.open_action.isEnabled()
    assert not panel.open_button.isEnabled() and not panel.draw_button.isEnabled()
    assert "rows of numbers" in panel.open_button.toolTip()
    assert panel.strip.count() == 200 and panel.index.maximum() == 199
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=LOAD_TIMEOUT_MS):
        panel.index.setValue(4)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=LOAD_TIMEOUT_MS)
    np.testing.assert_allclose(panel.bars.opts["height"], rows[4])
    assert panel.source.text().startswith(f"Dataset example 4 · true label {labels[4]}")
    assert NAMES[labels[4]] in panel.source.text()
    with torch.no_grad():
        x = torch.from_numpy(rows[4:5])
        hidden = mlp.relu(mlp.hidden(x))[0].numpy()
        probs = torch.softmax(mlp(x), dim=1)[0].numpy()
    assert window.views.currentWidget() is window.neuron_view
    np.testing.assert_allclose(window.neuron_view.values, hidden, rtol=1e-5, atol=1e-6)
    headline = window.prediction.headline.text()
    assert NAMES[int(probs.argmax())] in headline


def test_neuron_ablation_equals_a_forward_hook(qtbot, values_window, mlp):
    window, rows, labels = values_window
    with torch.no_grad():
        mean = mlp.relu(mlp.hidden(torch.from_numpy(rows))).mean(dim=0).numpy()
    units = tuple(int(u) for u in np.argsort(mean)[-4:])  # the busiest neurons
    expected = hooked_accuracy(mlp, rows, labels, units)
    wanted = (Ablation("relu", tuple(sorted(units))),)
    window.workbench.set_ablations(wanted)
    panel = window.accuracy_panel
    qtbot.waitUntil(lambda: panel.result is not None and panel.result.ablations == wanted,
                    timeout=LOAD_TIMEOUT_MS)
    assert panel.result.score == pytest.approx(expected)
    assert panel.result.score != pytest.approx(panel.result.baseline_score)


def test_unit_page_of_a_hidden_neuron(qtbot, values_window):
    window, rows, _ = values_window
    with qtbot.waitSignal(window.unit_pages.shown, timeout=LOAD_TIMEOUT_MS) as shown:
        window.unit_pages.open("hidden", 2)
    page = shown.args[0]
    assert page.top.pictures.shape == (16, 16, 12)  # bars of each top example's row
    assert window.unit_page_view.top_images.isVisible()
    assert window.unit_page_view.look_for.isHidden()  # no image to optimise


def test_your_own_rows_for_the_open_tabular_model(qtbot, values_window, tmp_path):
    window, rows, labels = values_window
    np.savez(tmp_path / "mine.npz", x=rows[:50], y=labels[:50])
    (tmp_path / "classes.txt").write_text("setosa\nversicolor\nvirginica\n")
    with qtbot.waitSignal(window.workbench.model_opened, timeout=LOAD_TIMEOUT_MS) as opened:
        window.workbench.open_file(str(tmp_path / "mine.npz"))
    info = opened.args[0]
    assert info.kind is ModelKind.VALUES and info.dataset_size == 50
    assert info.class_names == ("setosa", "versicolor", "virginica")
    assert info.dataset_source == "mine.npz"
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=LOAD_TIMEOUT_MS)
    # Four names for three outputs: a sentence, and the data in use stays.
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")
    with qtbot.waitSignal(window.workbench.error, timeout=LOAD_TIMEOUT_MS) as error:
        window.workbench.open_file(str(tmp_path / "mine.npz"))
    assert "has 4 names, but the model puts out 3 scores" in error.args[0]
    assert window.workbench.info.class_names == ("setosa", "versicolor", "virginica")
