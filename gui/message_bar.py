"""MessageBar: a dismissable banner for messages the user must read (bad file, failed
job). Non-modal, so nothing blocks and the previous state stays on screen."""

from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

STYLES = {
    "error": "background: #5a1f1f; color: #ffd9d6; border-radius: 4px;",
    "info": "background: #1f3a5a; color: #d6e9ff; border-radius: 4px;",
}


class MessageBar(QWidget):
    """Owns the banner above the views."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.text = QLabel("")
        self.text.setWordWrap(True)
        close = QPushButton("Dismiss")
        close.setFlat(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self.text, 1)
        layout.addWidget(close)
        close.clicked.connect(self.hide)
        self.level = ""
        self.hide()

    def show_message(self, text: str, level: str = "error") -> None:
        self.level = level
        self.text.setText(text)
        self.setStyleSheet(STYLES[level])
        self.show()

    def message(self) -> str:
        return "" if self.isHidden() else self.text.text()
