"""A lesson's link to a model beyond its own (lesson 5's real language model): where
the model's optional package is missing, the window says how to install it."""

from PySide6.QtCore import QUrl

from gui.lessons_panel import model_link


def test_a_link_names_model_layer_and_extra():
    url = QUrl("mechscope:open/smollm2-135m/block18.attn?extra=smollm")
    assert model_link(url) == ("smollm2-135m", "block18.attn", "smollm")
    assert model_link(QUrl("https://example.org/open/x")) is None
    assert model_link(QUrl("mechscope:close/x")) is None


def test_a_model_that_is_not_installed_says_how_to_install_it(qtbot, make_window):
    window = make_window()
    with qtbot.waitSignal(window.workbench.error, timeout=5_000):
        window.lessons_panel.text.anchorClicked.emit(
            QUrl("mechscope:open/no-such-model/block0.attn?extra=nosuch"))
    assert 'pip install -e ".[nosuch]"' in window.message_bar.message()
    assert window.workbench.info.name == "digits_cnn"  # the open model stays open
