"""The path users take (issue #10): the real window on the compute process, opening
every kind of file the README promises, by every route — menu, Open image…, drop,
recent files — each of which must reach the core as the same ``open_file`` call."""

import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QTimer

from core.api import api_methods
from core.datasets import load_digits
from core.zoo import digits_cnn
from tests.gui.conftest import drop_file
from tests.hostile.corpus import _digits_state

WAIT = 60_000


class Spy:
    """Forwards every SessionAPI call to the real session and records its name + path."""

    def __init__(self, session):
        self.session, self.calls = session, []
        for name in api_methods():
            setattr(self, name, self._forward(name))

    def _forward(self, name):
        def call(*args, **kwargs):
            self.calls.append((name, args[0] if args else None))
            return getattr(self.session, name)(*args, **kwargs)
        return call


@pytest.fixture
def window(compute_window):
    return compute_window


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One of each file a user brings, made as users make them."""
    out = tmp_path_factory.mktemp("user-files")
    state = _digits_state()
    torch.save(state, out / "weights.pt")
    from safetensors.torch import save_file

    save_file(dict(state), str(out / "weights.safetensors"))
    model = digits_cnn.build()
    model.load_state_dict(state)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(model).save(str(out / "scripted.pt"))
        torch.onnx.export(model, (torch.zeros(1, 1, 16, 16),), str(out / "cnn.onnx"),
                          dynamo=False)  # the default export: a fixed batch of 1
    digits = load_digits("eval")
    for i in range(3):
        gray = (255 * (1 - digits.display[i])).astype(np.uint8)  # dark ink on white
        Image.fromarray(gray).resize((64, 64), Image.NEAREST).save(out / f"digit{i}.png")
    folder = out / "folder"
    for i in range(20):
        label = int(digits.labels[i])
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        gray = (255 * digits.display[i]).astype(np.uint8)
        Image.fromarray(gray).resize((32, 32), Image.NEAREST).save(folder / str(label) / f"{i}.png")
    np.savez(out / "mine.npz", x=np.asarray(digits.inputs[:30]), y=np.asarray(digits.labels[:30]))
    rows = np.concatenate([np.asarray(digits.inputs[:25]).reshape(25, -1),
                           np.asarray(digits.labels[:25])[:, None]], axis=1)
    np.savetxt(out / "mine.csv", rows, delimiter=",", fmt="%.6g")
    os.mkfifo(out / "model.pt")
    return out


def _open(qtbot, window, path, signal=None):
    signal = signal or window.workbench.file_outcome
    with qtbot.waitSignal(signal, timeout=WAIT):
        window.workbench.open_file(str(path))
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)


@pytest.mark.parametrize("name", ["weights.pt", "weights.safetensors", "cnn.onnx"])
def test_model_files_open_and_score_like_the_shipped_model(qtbot, window, files, name):
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.open_file(str(files / name))
    assert name in window.workbench.info.title
    assert window.accuracy_panel.result.score > 0.98
    assert window.message_bar.message() == ""
    assert str(files / name) == window.settings.recent_files()[0]


def test_trusted_torchscript_opens_after_the_question(qtbot, window, files):
    window.workbench.open_file(str(files / "scripted.pt"))
    qtbot.waitUntil(lambda: window.files.dialog is not None
                    and window.files.dialog.isVisible(), timeout=WAIT)
    assert window.files.dialog.defaultButton() is window.files.dialog.cancel
    with qtbot.waitSignal(window.workbench.model_opened, timeout=WAIT):
        window.files.dialog.trust.click()
    assert "scripted.pt" in window.workbench.info.title


def test_an_image_file_is_predicted(qtbot, window, files):
    digits = load_digits("eval")
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=WAIT):
        window.input_panel.image_file_chosen.emit(str(files / "digit0.png"))
    assert window.input_panel.source.text() == "Image file digit0.png"
    assert window.prediction.headline.text().startswith(f"Prediction: {digits.labels[0]}")


@pytest.mark.parametrize("name,n", [("folder", 20), ("mine.npz", 30), ("mine.csv", 25)])
def test_your_own_data_is_evaluated(qtbot, window, files, name, n):
    _open(qtbot, window, files / name)
    result = window.accuracy_panel.result
    assert result.n == n and result.score > 0.9
    assert window.workbench.info.dataset_size == n


def test_a_named_pipe_is_refused_without_hanging(qtbot, window, files):
    _open(qtbot, window, files / "model.pt")
    assert "named pipe" in window.message_bar.message()
    assert window.workbench.info.name == "digits_cnn"
    assert window.crash_dialog.box is None  # never shown


def test_every_route_is_the_same_open_file_call(qtbot, window, files):
    spy = Spy(window.workbench.session)
    window.workbench.session = spy
    image = str(files / "digit1.png")
    routes = {
        "menu: open model file": lambda: window.file_menu.model_file_chosen.emit(image),
        "menu: data": lambda: window.file_menu.data_chosen.emit(image),
        "recent files": lambda: window.file_menu.file_chosen.emit(image),
        "open image": lambda: window.input_panel.image_file_chosen.emit(image),
        "drop": lambda: drop_file(window, image),
    }
    for route, act in routes.items():
        spy.calls.clear()
        with qtbot.waitSignal(window.workbench.file_outcome, timeout=WAIT):
            act()
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
        opening = [c for c in spy.calls if c[0] not in ("capture", "sample", "evaluate")]
        assert opening == [("open_file", image)], route


def test_a_lesson_steps_in_the_compute_process(qtbot, window):
    view = window.training_view
    with qtbot.waitSignal(view.updated, timeout=WAIT):
        window.lessons.open(1)
    with qtbot.waitSignal(view.updated, timeout=WAIT):
        view.step_button.click()
    assert view.snapshot.step == 1 and len(view.snapshot.losses) == 2


def test_cancel_then_carry_on(qtbot, window):
    wb = window.workbench
    with qtbot.waitSignal(wb.evaluation_cancelled, timeout=WAIT):
        wb.toggle_unit("conv2", 3)
        window.status_panel.cancel.click()
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        wb.toggle_unit("conv2", 4)
    assert window.accuracy_panel.result.ablations[0].units == (3, 4)


def test_cancel_right_after_new_data_shows_nothing_stale(qtbot, window, tmp_path):
    """Cancel as soon as your data is installed: the panel must not show the previous
    data's accuracy as this data's, and the views stay tinted (issue #10)."""
    wb = window.workbench
    cancelled = []
    wb.evaluation_cancelled.connect(lambda: cancelled.append(True))
    opened = []
    wb.model_opened.connect(opened.append)

    def cancel_the_first_evaluation(what, stale):
        if opened and what == "accuracy" and stale and not cancelled:
            # Once the job is submitted (just after this signal), as a user's click is.
            QTimer.singleShot(0, window.status_panel.cancel.click)
    wb.stale.connect(cancel_the_first_evaluation)
    digits = load_digits("eval")
    pick = np.arange(20_000) % len(digits)  # big enough that its evaluation takes a while
    np.savez(tmp_path / "mine.npz", x=np.asarray(digits.inputs)[pick],
             y=np.asarray(digits.labels)[pick])
    with qtbot.waitSignal(wb.model_opened, timeout=WAIT):
        wb.open_file(str(tmp_path / "mine.npz"))
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    assert cancelled
    assert window.accuracy_panel.result is None
    assert "mine.npz" in window.accuracy_panel.headline.text()
    assert "cancelled" in window.accuracy_panel.detail.text().lower()
