"""GUI tests drive the real window against the production session: the compute
process (:class:`core.remote.RemoteSession`), started once for the whole run — the
path users take (issue #10). ``--in-process`` behaviour is covered by core tests."""

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from core.remote import RemoteSession
from gui import crash
from gui.app import configure_pyqtgraph
from gui.main_window import MainWindow

LOAD_TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def fail_on_slot_exceptions():
    """PySide6 >= 6.5.2 prints exceptions raised in slots instead of letting pytest-qt
    see them; the app's own hook records them and the test fails."""
    seen: list[str] = []
    crash.install_excepthook(seen.append)
    yield seen
    assert not seen, f"exceptions in slots: {seen}"


@pytest.fixture(scope="session")
def compute():
    """The compute process users get; each window opens its own model in it."""
    remote = RemoteSession()
    yield remote
    remote.close()


@pytest.fixture
def compute_window(qtbot, tmp_path, compute):
    """The window users get at 1024x640, driving the compute process, with the shipped CNN
    open and its first evaluation drawn; settings of its own."""
    from gui.settings import AppSettings

    w = MainWindow(compute, settings=AppSettings(str(tmp_path / "settings.ini")))
    qtbot.addWidget(w)
    w.resize(1024, 640)
    w.show()
    with qtbot.waitSignal(w.accuracy_panel.updated, timeout=LOAD_TIMEOUT_MS):
        w.workbench.open_model("digits_cnn")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=LOAD_TIMEOUT_MS)
    yield w
    w.close()


@pytest.fixture(scope="session")
def smollm_session():
    """SmolLM2 opened in this process once for the run, for the views' tests that only
    ask it (captures, lenses, evaluations); the window's path has its own tests."""
    from core.session import Session
    from core.zoo import smollm

    if not smollm.available():
        pytest.skip("the smollm extra is not installed")
    session = Session()
    session.open_model("smollm2-135m")
    return session


@pytest.fixture
def make_window(qtbot, compute):
    configure_pyqtgraph()
    windows = []

    def make(model: str = "digits_cnn", layer: str = "conv1") -> MainWindow:
        window = MainWindow(compute)
        qtbot.addWidget(window)
        window.workbench.layer = layer
        window.show()
        with qtbot.waitSignal(window.accuracy_panel.updated, timeout=LOAD_TIMEOUT_MS):
            window.workbench.open_model(model)
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=LOAD_TIMEOUT_MS)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
    QApplication.processEvents()
    survivors = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
    assert not survivors, f"top-level widgets survived: {survivors}"


@pytest.fixture
def twindow(qtbot, make_window):
    """The induction transformer on block1.attn, with its head scores drawn."""
    window = make_window("induction_transformer", layer="block1.attn")
    qtbot.waitUntil(lambda: window.attention_view.scores is not None, timeout=LOAD_TIMEOUT_MS)
    return window


def drop_file(window, path) -> None:
    """Drop ``path`` on ``window`` as the window system does: the drag enters (and must
    be accepted), then drops."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(100, 100), *args)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(window, QDropEvent(QPointF(100, 100), *args))
