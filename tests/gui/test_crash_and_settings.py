"""Crash safety and persistence (issue #4)."""

from PySide6.QtWidgets import QPushButton

from gui import crash
from gui.main_window import MainWindow
from gui.settings import AppSettings

WAIT = 20_000


def test_worker_exception_reaches_dialog_and_log(qtbot, make_window):
    window = make_window()
    log_path = crash.setup_logging()

    def broken(token=None):
        return 1 / 0

    with qtbot.waitSignal(window.crash_dialog.shown, timeout=WAIT):
        window.worker.submit("view", broken, on_done=print)
    assert "ZeroDivisionError" in window.crash_dialog.box.text()
    assert window.crash_dialog.box.isVisible()
    assert "Traceback" in log_path.read_text() and "1 / 0" in log_path.read_text()
    window.crash_dialog.box.close()
    # The window still works.
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=WAIT):
        window.workbench.toggle_unit("conv1", 3)


def test_slot_exception_reaches_dialog_and_log(qtbot, make_window):
    window = make_window()
    log_path = crash.setup_logging()
    crash.install_excepthook(window.crash_dialog.report)

    def bad_slot():
        raise RuntimeError("a bug in a slot")

    button = QPushButton("boom", window)
    button.clicked.connect(bad_slot)
    with qtbot.waitSignal(window.crash_dialog.shown, timeout=WAIT):
        button.click()
    assert "a bug in a slot" in window.crash_dialog.box.text()
    assert "RuntimeError: a bug in a slot" in log_path.read_text()
    window.crash_dialog.box.close()
    with qtbot.waitSignal(window.channel_grid.drawn, timeout=WAIT):
        window.model_tree.select("conv2")


def test_settings_remember_model_layer_input_and_files(qtbot, tmp_path, compute):
    ini = str(tmp_path / "settings.ini")
    window = MainWindow(compute, settings=AppSettings(ini))
    qtbot.addWidget(window)
    window.workbench.layer = "conv2"
    window.show()
    with qtbot.waitSignal(window.accuracy_panel.updated, timeout=60_000):
        window.workbench.open_model("induction_transformer")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT)
    with qtbot.waitSignal(window.workbench.capture_ready, timeout=WAIT):
        window.workbench.select_sample(7)
    window.resize(1300, 700)
    saved = window.saveGeometry()
    window.close()
    again = AppSettings(ini)
    assert again.last_model == "induction_transformer"
    assert again.last_layer == "block1.attn"  # the model's default: conv2 is not in it
    assert again.last_input == 7
    assert again.geometry() == saved and again.window_state() is not None
    restored = MainWindow(compute, settings=again)
    qtbot.addWidget(restored)
    # (The offscreen screen is 800 px wide, so Qt clamps the restored size; the bytes
    # round-trip is what the app controls.)
    assert restored.restoreGeometry(again.geometry())
    restored.close()


def test_recent_files_are_kept_newest_first(tmp_path):
    settings = AppSettings(str(tmp_path / "s.ini"))
    for name in ("a.png", "b.png", "a.png"):
        settings.add_recent(str(tmp_path / name))
    assert [p.rsplit("/", 1)[1] for p in AppSettings(str(tmp_path / "s.ini")).recent_files()] \
        == ["a.png", "b.png"]
