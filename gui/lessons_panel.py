"""LessonsPanel: the six steps of the learning path, each with its text."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QUrl, Signal, Slot
from PySide6.QtWidgets import QListWidget, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from core.lessons import LESSONS


#: A lesson's link that opens a model in the workbench:
#: ``mechscope:open/MODEL/LAYER?extra=EXTRA`` (the extra says how to install it).
LINK_SCHEME = "mechscope"


def model_link(url: QUrl) -> Optional[tuple[str, str, str]]:
    """(model, layer, extra) of a lesson's ``mechscope:open/…`` link, else ``None``."""
    if url.scheme() != LINK_SCHEME:
        return None
    verb, _, rest = url.path().partition("/")
    model, _, layer = rest.partition("/")
    if verb != "open" or not model:
        return None
    extra = url.query().removeprefix("extra=") if url.query().startswith("extra=") else ""
    return model, layer, extra


class LessonsPanel(QWidget):
    """Owns the lesson list and the rendered Markdown of the selected lesson.

    ``model_requested(model, layer, extra)``: a link in the text asks for a model (one a
    lesson points to beyond its own, such as a real language model)."""

    lesson_opened = Signal(int)
    model_requested = Signal(str, str, str)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        for item in LESSONS:
            self.list.addItem(f"{item.number}. {item.title}")
        self.list.setMaximumHeight(130)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        # Links are the window's to follow (open a model), not the browser's to load.
        self.text.setOpenLinks(False)
        self.text.anchorClicked.connect(self._on_link)
        self.open_button = QPushButton("Open this lesson")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addWidget(self.open_button)
        layout.addWidget(self.text, 1)
        self.list.currentRowChanged.connect(self._on_row)
        self.list.itemDoubleClicked.connect(self._on_open)
        self.open_button.clicked.connect(self._on_open)
        self.list.setCurrentRow(0)

    @property
    def current(self) -> int:
        return LESSONS[max(self.list.currentRow(), 0)].number

    def show_lesson(self, number: int) -> None:
        """Select lesson ``number`` and show its text (does not open it)."""
        self.list.setCurrentRow(number - 1)

    @Slot(int)
    def _on_row(self, row: int) -> None:
        if 0 <= row < len(LESSONS):
            self.text.setMarkdown(LESSONS[row].text())

    @Slot(QUrl)
    def _on_link(self, url: QUrl) -> None:
        link = model_link(url)
        if link is not None:
            self.model_requested.emit(*link)

    @Slot()
    def _on_open(self, *_args) -> None:
        self.lesson_opened.emit(self.current)
