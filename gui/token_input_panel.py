"""TokenInputPanel: type letters, a sentence or a prompt for a token model, or pick an
evaluation sequence."""

from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QListWidget, QPushButton,
                               QVBoxLayout, QWidget)


class TokenInputPanel(QWidget):
    """Owns the text box and the example list; the window decides what to run."""

    text_submitted = Signal(str)
    sample_requested = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Type letters, e.g. KQBXDKQBXD, and press Enter")
        # Room for a sentence for the encoder; the model itself says how long may be.
        self.edit.setMaxLength(400)
        self.run = QPushButton("Run")
        self.examples = QListWidget()
        # A long sequence keeps both ends (a repeat's "… (repeated)") instead of a
        # sideways scroll bar; the whole row is its tooltip.
        self.examples.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.examples.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.examples.setToolTip("Sequences from the evaluation set: random letters, "
                                 "then the same letters again")
        self.source = QLabel("")
        self.source.setWordWrap(True)
        self.source.setMinimumWidth(100)
        self.source.setStyleSheet("font-weight: bold;")
        row = QHBoxLayout()
        row.addWidget(self.edit, 1)
        row.addWidget(self.run)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(row)
        layout.addWidget(self.source)
        layout.addWidget(QLabel("Examples (click one):"))
        layout.addWidget(self.examples, 1)
        self.edit.returnPressed.connect(self._on_submit)
        self.run.clicked.connect(self._on_submit)
        self.examples.currentRowChanged.connect(self._on_example)

    def set_hint(self, hint: str, examples_tip: str = "") -> None:
        """The text box's placeholder and what the example list holds, in the open
        model's words."""
        self.edit.setPlaceholderText(hint)
        if examples_tip:
            self.examples.setToolTip(examples_tip)

    def show_examples(self, texts: Sequence[str]) -> None:
        self.examples.blockSignals(True)
        self.examples.clear()
        for i, text in enumerate(texts):
            self.examples.addItem(f"{i}: {text}")
            # A row wider than the list is read whole when pointed at.
            self.examples.item(i).setToolTip(text)
        self.examples.blockSignals(False)

    def show_tokens(self, tokens: Sequence[str], description: str) -> None:
        self.source.setText(f"{description}: {' '.join(tokens)}")

    def select_example(self, index: int) -> None:
        self.examples.blockSignals(True)
        self.examples.setCurrentRow(index)
        self.examples.blockSignals(False)

    @Slot()
    def _on_submit(self) -> None:
        self.select_example(-1)
        self.text_submitted.emit(self.edit.text())

    @Slot(int)
    def _on_example(self, row: int) -> None:
        if row >= 0:
            self.sample_requested.emit(row)
