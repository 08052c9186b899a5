"""``mechscope.show``: a live module of the user's own class, from a script or notebook,
in the real window (issue #15). The window runs the core in this process, as it must
for a live module; pytest-qt's event loop drives it through ``block=False``."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication
from torch import nn

import mechscope
from core.ablation import Ablation
from core.kinds import ModelKind
from core.live import RERUNS, RESUMES
from gui import live_window
from gui.main_window import MainWindow

TIMEOUT_MS = 60_000
README = Path(__file__).resolve().parents[2] / "README.md"


class SmallCNN(nn.Module):
    """Not an nn.Sequential: every ablation reruns the whole forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(1, 6, 3, padding=1), nn.ReLU()
        self.pool = nn.MaxPool2d(4)
        self.fc = nn.Linear(6 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(self.pool(self.relu1(self.conv1(x))).flatten(1))


class NextToken(nn.Module):
    """Token ids (N, T) -> next-token scores (N, T, V)."""

    def __init__(self, vocab: int = 7) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 12)
        self.mix = nn.Linear(12, 12)
        self.unembed = nn.Linear(12, vocab)

    def forward(self, ids):
        return self.unembed(torch.relu(self.mix(self.embed(ids))))


def _train(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int) -> nn.Module:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(steps):
        batch = torch.randint(len(xs), (64,))
        loss = nn.functional.cross_entropy(model(xs[batch]), ys[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.fixture(scope="module")
def digits():
    return mechscope.digits()


@pytest.fixture(scope="module")
def cnn(digits):
    torch.manual_seed(0)
    return _train(SmallCNN(), digits[0], digits[1], 60)


def _watch(window: MainWindow, seen: list) -> None:
    """The window's crash dialog (which show() makes the exception hook) fails the test
    as the conftest's hook would."""
    window.crash_dialog.shown.connect(seen.append)


@pytest.fixture
def opened(qtbot, fail_on_slot_exceptions):
    """``open(model, x, y, ...)``: show(block=False), waiting until the first
    evaluation is in; every window is closed after the test."""
    windows = []

    def open_(model, x, y, **kw) -> MainWindow:
        window = mechscope.show(model, x, y, block=False, **kw)
        windows.append(window)
        qtbot.addWidget(window)
        _watch(window, fail_on_slot_exceptions)
        qtbot.waitUntil(lambda: window.accuracy_panel.result is not None
                        and not window.worker.busy, timeout=TIMEOUT_MS)
        return window

    yield open_
    for window in windows:
        window.close()
    QApplication.processEvents()


def _made_windows(monkeypatch) -> list:
    """The windows show() makes from now on (not QApplication.topLevelWidgets(), which
    may still list windows of earlier tests that are being deleted)."""
    made = []

    def make(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    real = live_window.make_window
    monkeypatch.setattr(live_window, "make_window", make)
    return made


def _hooked_accuracy(model: nn.Module, module: nn.Module, channel: int, x, y) -> float:
    """Accuracy with ``channel`` of ``module``'s output zeroed, by a hand-written hook."""
    def hook(_module, _inputs, out):
        out = out.clone()
        out[:, channel] = 0
        return out

    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            predicted = model.eval()(torch.from_numpy(x.copy())).argmax(1).numpy()
    finally:
        handle.remove()
    return float((predicted == y).mean())


def test_readme_example_runs_and_opens_the_window(qtbot, monkeypatch, fail_on_slot_exceptions):
    """The README's own code block, as a user pastes it: its model opens, the status
    line says each ablation reruns the model, and its training flag comes back."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Your own model from a script or notebook", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "class MyCNN(nn.Module)" in code and "mechscope.show(model, x_test, y_test)" in code
    shown = []
    real_show = mechscope.show

    def show(*args, **kw):  # the notebook way: return at once, pytest-qt runs the loop
        shown.append(real_show(*args, block=False, **kw))
        return shown[-1]

    monkeypatch.setattr(mechscope, "show", show)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    window = shown[0]
    qtbot.addWidget(window)
    _watch(window, fail_on_slot_exceptions)
    try:
        qtbot.waitUntil(lambda: window.accuracy_panel.result is not None
                        and not window.worker.busy, timeout=TIMEOUT_MS)
        assert window.workbench.info.name == "MyCNN"
        assert RERUNS in window.status_panel.info.text()
        assert window.accuracy_panel.result.baseline_score > 0.5  # it did learn
        assert not scope["model"].training
    finally:
        window.close()
    assert scope["model"].training


def test_a_channel_ablated_in_the_window_equals_a_hand_written_hook(qtbot, opened, digits,
                                                                     cnn):
    _, _, x_test, y_test = digits
    window = opened(cnn, x_test, y_test)
    wb = window.workbench
    assert wb.layer == "conv1"  # the first convolution is shown first
    with qtbot.waitSignal(wb.capture_ready, timeout=TIMEOUT_MS):
        window.model_tree.select("fc")
    assert window.views.currentWidget() is window.neuron_view
    with qtbot.waitSignal(wb.capture_ready, timeout=TIMEOUT_MS) as got:
        window.model_tree.select("conv1")  # as a click in the model tree does
    assert got.args[0].activations["conv1"].shape == (6, 16, 16)
    assert window.views.currentWidget() is window.channel_grid
    assert window.channel_grid.site == "conv1"
    assert len(window.channel_grid.tiles) == 6
    assert RERUNS in window.status_panel.info.text()
    with qtbot.waitSignal(wb.evaluation_ready, timeout=TIMEOUT_MS) as got:
        wb.set_ablations((Ablation("conv1", (2,), "zero"),))
    result = got.args[0]
    assert result.ablations == (Ablation("conv1", (2,), "zero"),)
    assert result.resumed_from is None  # what the status line says: a full rerun
    expected = _hooked_accuracy(cnn, cnn.conv1, 2, x_test, y_test)
    assert result.score == pytest.approx(expected, abs=1e-9)
    intact = float((cnn(torch.from_numpy(x_test.copy())).argmax(1).numpy() == y_test).mean())
    assert result.baseline_score == pytest.approx(intact, abs=1e-9)
    assert result.score != result.baseline_score  # the channel mattered on these digits


def test_a_sequential_model_resumes_and_the_built_ins_stay_a_click_away(qtbot, opened,
                                                                        digits):
    x_train, y_train, x_test, y_test = digits
    torch.manual_seed(1)
    model = _train(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(4 * 16 * 16, 10)), x_train, y_train, 20)
    window = opened(model, torch.from_numpy(x_test), torch.from_numpy(y_test),
                    class_names=[f"digit {i}" for i in range(10)], layer="1")
    wb = window.workbench
    assert RESUMES in window.status_panel.info.text()
    assert wb.layer == "1" and wb.info.class_names[3] == "digit 3"
    with qtbot.waitSignal(wb.evaluation_ready, timeout=TIMEOUT_MS) as got:
        wb.set_ablations((Ablation("1", (0,), "zero"),))
    assert got.args[0].resumed_from == "1"
    # The Model box lists the live model with the built-ins: away and back again.
    box = window.model_box
    names = [box.itemData(i) for i in range(box.count())]
    assert "digits_cnn" in names and "Sequential" in names
    with qtbot.waitSignal(wb.model_opened, timeout=TIMEOUT_MS):
        box.activated.emit(names.index("digits_cnn"))
    assert "reruns" not in window.status_panel.info.text()
    with qtbot.waitSignal(wb.model_opened, timeout=TIMEOUT_MS) as back:
        box.activated.emit(names.index("Sequential"))
    assert back.args[0].name == "Sequential" and back.args[0].dataset_size == len(x_test)
    assert RESUMES in window.status_panel.info.text()


def test_token_ids_open_with_the_token_views(qtbot, opened):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 7, size=(40, 9))
    targets = np.roll(ids, -1, axis=1)
    targets[:, -1] = -1
    window = opened(NextToken(), ids, targets)
    info = window.workbench.info
    assert info.kind is ModelKind.TOKENS and len(info.class_names) == 7
    assert window.inputs.currentWidget() is window.token_panel
    assert window.predictions.currentWidget() is window.token_prediction
    assert not window.message_bar.isVisible(), window.message_bar
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=TIMEOUT_MS) as got:
        window.model_tree.select("mix")
    assert got.args[0].activations["mix"].shape == (9, 12)


def test_rows_of_numbers_open_with_the_neuron_view(qtbot, opened):
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(30, 5)).astype(np.float32)
    model = nn.Module()  # a model built ad hoc, attributes only: still not a Sequential
    model.fc1, model.out = nn.Linear(5, 8), nn.Linear(8, 3)
    model.forward = lambda x: model.out(torch.relu(model.fc1(x)))
    window = opened(model, rows, rng.integers(0, 3, 30), class_names=["a", "b", "c"])
    assert window.workbench.info.kind is ModelKind.VALUES
    assert window.workbench.layer == "fc1"
    assert window.views.currentWidget() is window.neuron_view
    assert RERUNS in window.status_panel.info.text()


class Raises(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        raise RuntimeError("my forward is broken")


@pytest.mark.parametrize("args, error, words", [
    (("not a model", np.zeros((4, 3), np.float32), np.zeros(4)), TypeError, "nn.Module"),
    ((nn.Linear(3, 2), np.zeros((4, 3), np.float32), np.zeros(5)), ValueError,
     "labels have shape (5,)"),
    ((nn.Linear(3, 2), np.full((4, 3), np.nan, np.float32), np.zeros(4)), ValueError,
     "NaN"),
    ((Raises(), np.zeros((4, 3), np.float32), np.zeros(4)), ValueError,
     "my forward is broken"),
    ((nn.Linear(3, 2), np.zeros((4, 3), np.float32), np.array([0, 1, 2, 0])), ValueError,
     "2 classes"),
    ((nn.Linear(3, 2), np.zeros((4, 3), np.float32), np.zeros(4), ["a", "b", "c"]),
     ValueError, "3 class names"),
    ((nn.Linear(3, 2), "rows", np.zeros(4)), TypeError, "numpy array or a torch tensor"),
    ((nn.Linear(3, 2).double(), np.zeros((4, 3), np.float32), np.zeros(4)), ValueError,
     "model.float()"),
])
def test_bad_arguments_raise_a_sentence_before_any_window(qtbot, monkeypatch, args, error,
                                                         words):
    model = args[0]
    windows = _made_windows(monkeypatch)
    with pytest.raises(error) as caught:
        mechscope.show(*args, block=False)
    assert words in str(caught.value)
    assert windows == []
    if isinstance(model, nn.Module):
        assert model.training  # left as it came


def test_an_unknown_layer_names_the_layers(qtbot, cnn, digits):
    with pytest.raises(ValueError, match="no layer 'conv9'; its layers are conv1, relu1"):
        mechscope.show(cnn, digits[2], digits[3], layer="conv9", block=False)


def test_training_flags_come_back_when_the_window_closes(qtbot, opened, digits, cnn):
    cnn.train()
    cnn.relu1.eval()  # mixed flags come back as they were, each its own
    window = opened(cnn, digits[2][:50], digits[3][:50])
    assert not any(m.training for m in cnn.modules())  # evaluated in eval mode
    window.close()
    assert cnn.training and cnn.conv1.training and not cnn.relu1.training
    cnn.eval()
    window.close()  # again (pytest-qt closes it once more): the caller's flags stay
    assert not cnn.training


def test_show_blocks_until_the_window_closes(qtbot, monkeypatch, digits, cnn):
    """The script way: show() returns only when the window has closed."""
    seen = []
    windows = _made_windows(monkeypatch)

    def close_when_ready() -> None:
        ready = windows and windows[0].accuracy_panel.result is not None \
            and not windows[0].worker.busy
        if not ready:
            QTimer.singleShot(50, close_when_ready)
            return
        seen.append(windows[0].workbench.info.name)
        windows[0].close()

    QTimer.singleShot(0, close_when_ready)
    cnn.train()
    assert mechscope.show(cnn, digits[2][:60], digits[3][:60]) is None
    assert seen == ["SmallCNN"] and cnn.training
    cnn.eval()


class Breakable(SmallCNN):
    """Its forward starts failing when the notebook says so, after the window opened."""

    broken = False

    def forward(self, x):
        if self.broken:
            raise RuntimeError("a bug I just typed")
        return super().forward(x)


def test_a_forward_that_fails_in_a_later_job_is_a_message_in_the_window(qtbot, opened,
                                                                        digits):
    model = Breakable()
    window = opened(model, digits[2][:40], digits[3][:40])
    before = window.accuracy_panel.result
    model.broken = True
    with qtbot.waitSignal(window.workbench.error, timeout=TIMEOUT_MS) as got:
        window.workbench.toggle_unit("conv1", 0)
    assert "Breakable's forward pass failed (RuntimeError: a bug I just typed)" in got.args[0]
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=TIMEOUT_MS)
    assert window.message_bar.isVisible()
    # The refused change is taken back: the intact model's result again (cached).
    assert window.workbench.ablations == ()
    assert window.accuracy_panel.result.score == before.score
    model.broken = False  # fixed in the notebook: the window works on
    with qtbot.waitSignal(window.workbench.evaluation_ready, timeout=TIMEOUT_MS):
        window.workbench.toggle_unit("conv1", 1)


class Picky(nn.Module):
    """Passes its input on, but raises on a channel that is all zero: a zero ablation
    of the layer before it makes the model's own forward fail (the reviewer's case)."""

    def forward(self, h):
        if (h.abs().flatten(2).sum(2) == 0).any():
            raise RuntimeError("Picky refuses a channel that is all zero")
        return h


def test_an_ablation_the_forward_refuses_is_taken_back(qtbot, opened, digits):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), Picky(), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 16 * 16, 10))
    window = opened(model, digits[2][:40], digits[3][:40], layer="0")
    wb, panel = window.workbench, window.accuracy_panel
    before = panel.result
    with qtbot.waitSignal(wb.error, timeout=TIMEOUT_MS) as got:
        wb.toggle_unit("0", 1)  # what a Ctrl+click on channel 1's tile does
    assert "Picky refuses a channel that is all zero" in got.args[0]
    assert "taken back" in got.args[0]
    qtbot.waitUntil(lambda: not window.worker.busy and panel.detail.text() != "Evaluating…",
                    timeout=TIMEOUT_MS)
    assert wb.ablations == ()
    assert [window.ablation_panel.active.item(i).text()
            for i in range(window.ablation_panel.active.count())] == \
        ["nothing — the model is intact"]
    units = window.ablation_panel.units
    assert all(units.item(i).checkState() == Qt.CheckState.Checked
               for i in range(units.count()))
    assert panel.result.ablations == () and panel.result.score == before.score
    assert "taken back" in window.message_bar.message()


def test_colour_images_of_named_classes_are_said_as_they_are(qtbot, opened):
    """Not the digits: the input panel says what the arrays are, names the classes in
    the strip, and offers no drawing (it would become a 1×16×16 digit)."""
    torch.manual_seed(0)
    x, y = torch.rand(24, 3, 32, 32), torch.arange(24) % 4
    model = nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                          nn.Flatten(), nn.Linear(80, 4))
    names = ["cat", "dog", "car", "ship"]
    window = opened(model, x, y, class_names=names)
    panel = window.input_panel
    assert window.inputs.currentWidget() is panel
    qtbot.waitUntil(lambda: panel.source.text().startswith("Dataset example"),
                    timeout=TIMEOUT_MS)
    assert [panel.strip.item(i).text() for i in range(4)] == names
    assert panel.strip.item(1).toolTip() == "example 1, true label dog"
    assert panel.source.text() == "Dataset example 0 · true label cat"
    assert "8x8" not in panel.steps.text() and "as given (3×32×32)" in panel.steps.text()
    for button in (panel.open_button, panel.draw_button):
        assert not button.isEnabled() and "reads 3×32×32 inputs" in button.toolTip()
    assert not window.file_menu.open_action.isEnabled()


def test_digits_of_ones_own_still_take_a_drawing(qtbot, opened, digits, cnn):
    window = opened(cnn, digits[2][:30], digits[3][:30])
    panel = window.input_panel
    qtbot.waitUntil(lambda: panel.source.text().startswith("Dataset example"),
                    timeout=TIMEOUT_MS)
    assert panel.draw_button.isEnabled() and panel.open_button.isEnabled()
    assert window.file_menu.open_action.isEnabled()
    assert "as given (1×16×16)" in panel.steps.text()


def _labels_fit(axis) -> bool:
    """The labels the axis draws (every ``step()``-th) leave room between them."""
    lo, hi = axis.range
    per_cell = axis.width() / (hi - lo)
    widest = max(axis._metrics().horizontalAdvance(t) for t in axis.tokens)
    return axis.step() * per_cell >= widest + axis.gap


def test_long_class_names_under_the_prediction_never_overlap(qtbot, opened, digits, cnn):
    torch.manual_seed(0)
    x, y = torch.rand(24, 3, 32, 32), torch.arange(24) % 4
    model = nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 900, 4))
    window = opened(model, x, y, class_names=["cadog", "car", "shipping", "aeroplane"])
    window.resize(1024, 640)
    qtbot.waitUntil(lambda: window.prediction.headline.text().startswith("Prediction: "),
                    timeout=TIMEOUT_MS)
    QApplication.processEvents()
    axis = window.prediction.classes_axis
    assert axis.tokens == ["cadog", "car", "shipping", "aeropla…"]
    assert _labels_fit(axis)
    # The ten digits' one-character names all still fit side by side.
    digits_window = opened(cnn, digits[2][:30], digits[3][:30])
    digits_window.resize(1024, 640)
    qtbot.waitUntil(lambda: digits_window.prediction.headline.text().startswith("Prediction"),
                    timeout=TIMEOUT_MS)
    QApplication.processEvents()
    axis = digits_window.prediction.classes_axis
    assert len(axis.tokens) == 10 and _labels_fit(axis)
