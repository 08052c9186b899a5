"""Opening user files in the window: trust asked per file, drops, bad files (issue #6)."""

import pytest
import torch
from PIL import Image, ImageDraw
from PySide6.QtCore import QPoint, Qt

from core.zoo import digits_cnn
from gui.main_window import MainWindow
from gui.settings import AppSettings
from tests.gui.conftest import drop_file
from tests.hostile.corpus import _digits_state

WAIT = 30_000


@pytest.fixture
def files(tmp_path):
    state = _digits_state()
    model = digits_cnn.build()
    model.load_state_dict(state)
    torch.save(model, tmp_path / "whole_model.pt")
    torch.save(state, tmp_path / "weights.pt")
    (tmp_path / "page.pt").write_text("<!doctype html><html>login</html>")
    img = Image.new("L", (60, 80), 255)
    ImageDraw.Draw(img).line([(30, 10), (30, 70)], fill=0, width=8)
    img.save(tmp_path / "one.png")
    return tmp_path


@pytest.fixture
def window(qtbot, tmp_path, compute):
    w = MainWindow(compute, settings=AppSettings(str(tmp_path / "settings.ini")))
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.accuracy_panel.updated, timeout=WAIT):
        w.workbench.open_model("digits_cnn")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT)
    yield w
    w.close()


def _answer(qtbot, window, trust: bool) -> None:
    qtbot.waitUntil(lambda: window.files.dialog is not None
                    and window.files.dialog.isVisible(), timeout=WAIT)
    dialog = window.files.dialog
    assert dialog.defaultButton() is dialog.cancel
    assert "SHA-256" in dialog.informativeText()
    assert "torch.nn.modules.conv.Conv2d" in dialog.informativeText()
    (dialog.trust if trust else dialog.cancel).click()


def test_declining_trust_keeps_the_app_as_it_was(qtbot, window, files):
    window.workbench.open_checkpoint(str(files / "whole_model.pt"))
    _answer(qtbot, window, trust=False)
    qtbot.waitUntil(lambda: "was not opened" in window.message_bar.message(), timeout=WAIT)
    assert window.workbench.info.name == "digits_cnn"
    assert not window.settings.is_trusted(window.files.dialog.error.sha256)


def test_accepting_trust_opens_and_is_remembered_by_hash(qtbot, window, files):
    window.workbench.open_checkpoint(str(files / "whole_model.pt"))
    with qtbot.waitSignal(window.workbench.model_opened, timeout=WAIT):
        _answer(qtbot, window, trust=True)
    assert "whole_model.pt" in window.workbench.info.title
    first = window.files.dialog
    # The same content again: no question.
    with qtbot.waitSignal(window.workbench.model_opened, timeout=WAIT):
        window.workbench.open_checkpoint(str(files / "whole_model.pt"))
    assert window.files.dialog is first
    assert "whole_model.pt" in window.settings.recent_files()[0]


def test_dropping_files_opens_images_and_models(qtbot, window, files):
    with qtbot.waitSignal(window.workbench.image_ready, timeout=WAIT):
        drop_file(window, files / "one.png")
    with qtbot.waitSignal(window.workbench.model_opened, timeout=WAIT):
        drop_file(window, files / "weights.pt")
    assert window.workbench.info.title.endswith("weights.pt")


def test_a_web_page_saved_as_pt_is_named(qtbot, window, files):
    with qtbot.waitSignal(window.workbench.error, timeout=WAIT):
        window.workbench.open_file(str(files / "page.pt"))
    assert "web page" in window.message_bar.message()
    assert window.workbench.info.name == "digits_cnn"


def test_drawing_a_one_predicts_one(qtbot, window):
    panel = window.input_panel
    panel.draw_button.click()
    canvas = panel.draw.canvas
    assert canvas.isVisible()
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=WAIT):
        qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(70, 20))
        for y in range(25, 125, 5):
            qtbot.mouseMove(canvas, QPoint(70, y))
        qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(70, 120))
    assert window.input_panel.source.text() == "Your drawing"
    assert window.prediction.headline.text().startswith("Prediction: 1")


def test_evaluating_on_dropped_data(qtbot, window, tmp_path):
    import numpy as np

    inputs = np.zeros((6, 1, 16, 16), np.float32)
    labels = np.arange(6) % 10
    np.savez(tmp_path / "mine.npz", x=inputs, y=labels)
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.open_file(str(tmp_path / "mine.npz"))
    assert window.accuracy_panel.result.n == 6
    assert window.input_panel.strip.count() == 6
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 3)), y=[0, 1])
    with qtbot.waitSignal(window.workbench.error, timeout=WAIT):
        window.workbench.open_file(str(tmp_path / "bad.npz"))
    assert "expects (1, 16, 16)" in window.message_bar.message()
    assert window.accuracy_panel.result.n == 6  # the data in use stayed


def test_input_description_is_asked_once_per_model(qtbot, window, tmp_path):
    from tests.core.mnist_like import make

    path = tmp_path / "mnist_like.onnx"
    make(path)
    window.workbench.open_checkpoint(str(path))
    qtbot.waitUntil(lambda: window.files.spec_dialog is not None
                    and window.files.spec_dialog.isVisible(), timeout=WAIT)
    dialog = window.files.spec_dialog
    dialog.preset.setCurrentText("MNIST mean/std (0.1307, 0.3081)")
    with qtbot.waitSignal(window.workbench.model_opened, timeout=WAIT):
        dialog.accept()
    assert "0.1307" in window.workbench.info.title
    with qtbot.waitSignal(window.workbench.model_opened, timeout=WAIT):
        window.workbench.open_checkpoint(str(path))
    assert window.files.spec_dialog is dialog  # not asked again
