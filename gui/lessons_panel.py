"""LessonsPanel: the six steps of the learning path, each with its text."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QListWidget, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from core.lessons import LESSONS


class LessonsPanel(QWidget):
    """Owns the lesson list and the rendered Markdown of the selected lesson."""

    lesson_opened = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        for item in LESSONS:
            self.list.addItem(f"{item.number}. {item.title}")
        self.list.setMaximumHeight(130)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
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

    @Slot()
    def _on_open(self, *_args) -> None:
        self.lesson_opened.emit(self.current)
