"""InputSpecDialog: asked once per model when its input cannot be inferred — which
value range and normalisation its images expect."""

from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QWidget)

from core.files.preprocess import PRESETS, InputSpec


class InputSpecDialog(QDialog):
    """Owns the choice of normalisation; the shape comes from the model."""

    def __init__(self, error, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("How does this model want its input?")
        self.error = error
        guess = error.guess
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.preset.setToolTip("The scaling its training used: 0..1 (ToTensor), -1..1, "
                               "or a mean/std Normalize as in most MNIST tutorials")
        form = QFormLayout(self)
        form.addRow(QLabel(f"<b>{error.path}</b><br>{error}"))
        form.addRow("Images:", QLabel(f"{guess.channels} channel(s), {guess.height}×"
                                      f"{guess.width} (from the model)"))
        form.addRow("Values:", self.preset)
        form.addRow(QLabel("The built-in digits are resized and scaled this way to "
                           "evaluate the model; your answer is remembered for this file."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        form.addRow(buttons)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

    def spec(self) -> InputSpec:
        low, high, mean, std = PRESETS[self.preset.currentText()]
        g = self.error.guess
        return InputSpec(g.channels, g.height, g.width, low, high, mean, std)
