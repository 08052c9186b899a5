"""StatusPanel: progress of background work and a Cancel button, for the status bar."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from gui.views.labels import ElidedLabel


CANCELLED = "Cancelled."


class StatusPanel(QWidget):
    """Owns the progress read-out; ``cancel_requested`` when the user clicks Cancel."""

    cancel_requested = Signal()

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        # Elided: a long model or data-file name must not widen the window.
        self.info = ElidedLabel("")
        self.text = ElidedLabel("")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setFixedWidth(160)
        self.bar.setTextVisible(False)
        self.cancel = QPushButton("Cancel")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.info, 1)
        layout.addWidget(self.text)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel)
        self.cancel.clicked.connect(self.cancel_requested)
        self.set_busy(False)

    @Slot(bool)
    def set_busy(self, busy: bool) -> None:
        self.bar.setVisible(busy)
        self.cancel.setVisible(busy)
        if busy:
            self.text.setText("")  # a new job: an old "Cancelled." no longer applies
        else:
            self.bar.setValue(0)
            if self.text.text() != CANCELLED:
                self.text.setText("")

    def show_cancelled(self) -> None:
        """Say "Cancelled." until the next job starts, keeping the model's read-out."""
        self.text.setText(CANCELLED)

    @Slot(str, float, str)
    def show_progress(self, _key: str, fraction: float, text: str) -> None:
        self.bar.setValue(int(fraction * 1000))
        self.text.setText(text)
