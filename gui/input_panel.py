"""InputPanel: pick a dataset example from a thumbnail strip, or open an image file,
and see what the model is given."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QFileDialog, QFrame, QHBoxLayout, QLabel, QListView,
                               QListWidget, QListWidgetItem, QPushButton, QScrollArea, QSpinBox,
                               QVBoxLayout, QWidget)

from core.files.images import ConvertedImage
from gui.draw_panel import DrawPanel
from gui.views.imaging import gray_to_uint8

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"
OPEN_TIP = ("A PNG/JPG of a digit: it is converted to the model's 8x8 → 16x16 input, and "
            "the steps are shown")
DRAW_TIP = "Draw a digit with the mouse"
#: What a picture or a drawing is converted to (core.files.images).
DIGIT_INPUT = (1, 16, 16)


def pixmap(img: np.ndarray, size: int) -> QPixmap:
    """(h, w) 0..1 grayscale -> a crisp (nearest-neighbour) square pixmap."""
    data = gray_to_uint8(img)
    h, w = data.shape
    qimg = QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(qimg).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation)


class InputPanel(QWidget):
    """Owns the choice of input and its preview; the window decides what to run."""

    sample_requested = Signal(int)
    image_file_chosen = Signal(str)
    drawing_made = Signal(object)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.strip = QListWidget()
        self.strip.setViewMode(QListView.ViewMode.IconMode)
        self.strip.setFlow(QListView.Flow.LeftToRight)
        self.strip.setWrapping(False)
        self.strip.setIconSize(QSize(40, 40))
        self.strip.setFixedHeight(78)
        self.strip.setMovement(QListView.Movement.Static)
        self.strip.setToolTip("Held-out examples with their true labels")
        self.index = QSpinBox()
        self.index.setPrefix("example ")
        self.index.setEnabled(False)
        self.open_button = QPushButton("Open image…")
        self.open_button.setToolTip(OPEN_TIP)
        self.draw_button = QPushButton("Draw…")
        self.draw_button.setCheckable(True)
        self.draw_button.setToolTip(DRAW_TIP)
        self.class_names: tuple[str, ...] = ()
        self.input_shape: tuple[int, ...] = DIGIT_INPUT
        #: Whether the examples are the built-in digits (else the user's own data).
        self.digits = True
        self.source_name = "built-in"
        self.draw = DrawPanel()
        self.draw.hide()
        self.source = QLabel("")
        self.source.setWordWrap(True)
        self.previews = [QLabel() for _ in range(3)]
        self.steps = QLabel("")
        self.steps.setWordWrap(True)
        self.steps.setStyleSheet("color: #999; font-size: 11px;")
        self.source.setStyleSheet("font-weight: bold;")
        controls = QVBoxLayout()
        controls.addWidget(self.index)
        controls.addWidget(self.open_button)
        controls.addWidget(self.draw_button)
        controls.addStretch(1)
        row = QHBoxLayout()
        row.addLayout(controls)
        for label in self.previews:
            label.setFixedSize(72, 72)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            row.addWidget(label, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.draw, 0, Qt.AlignmentFlag.AlignTop)
        row.addStretch(1)
        #: The row beside the buttons, where a kind of input that is no picture puts
        #: its own preview (gui.values_input_panel).
        self.preview_row = row
        # The explanation gets the panel's whole width under the pictures, not a sliver
        # beside them.
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.strip)
        layout.addLayout(row)
        layout.addWidget(self.source)
        layout.addWidget(self.steps)
        layout.addStretch(1)
        # Showing the canvas must not raise the panel's minimum width: that squeezed the
        # docks beside it (and the narrower width was saved). It scrolls instead.
        scroll = QScrollArea()
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.scroll_area = scroll
        self.strip.currentRowChanged.connect(self._on_strip_row)
        self.index.valueChanged.connect(self._on_index)
        self.open_button.clicked.connect(self.choose_file)
        self.draw_button.toggled.connect(self._on_draw_toggled)
        self.draw.drawn.connect(self.drawing_made)

    def set_model(self, info) -> None:
        """What the open model (a :class:`core.api.ModelInfo`) reads: its class names
        label the strip, and its data say how an example became its input. An image
        file or a drawing becomes the digits' 1×16×16 input (or the built-in digits'
        conversion to the model's input), so other models cannot be given one."""
        self.class_names = tuple(info.class_names)
        self.input_shape = tuple(info.input_shape)
        self.digits = info.dataset_source == "built-in"
        self.source_name = info.dataset_source
        drawable = self.digits or self.input_shape == DIGIT_INPUT
        shape = "×".join(map(str, self.input_shape))
        why = (f"{info.name} reads {shape} inputs: a picture or a drawing becomes the "
               "digits' 1×16×16 input, so choose one of your examples instead.")
        for button, tip in ((self.open_button, OPEN_TIP), (self.draw_button, DRAW_TIP)):
            button.setEnabled(drawable)
            button.setToolTip(tip if drawable else why)
        if not drawable:
            self.draw_button.setChecked(False)

    def class_name(self, label: int) -> str:
        """``label``'s class name (the index itself if the model has none for it)."""
        label = int(label)
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)

    def show_examples(self, images: np.ndarray, labels: np.ndarray,
                      total: Optional[int] = None) -> None:
        """Fill the strip with ``images`` (N, h, w) 0..1 and their ``labels`` (N,): the
        first of ``total`` examples (the spinner reaches every one of them)."""
        self.strip.blockSignals(True)
        self.strip.clear()
        for i, (img, label) in enumerate(zip(images, labels)):
            item = QListWidgetItem(QIcon(pixmap(img, 40)), self.class_name(label))
            item.setToolTip(f"example {i}, true label {self.class_name(label)}")
            self.strip.addItem(item)
        self.strip.blockSignals(False)
        self.index.blockSignals(True)
        self.index.setRange(0, (total or len(labels)) - 1)
        self.index.setEnabled(True)
        self.index.blockSignals(False)

    def _select(self, index: int) -> None:
        """Mark example ``index`` in the strip and the spinner without asking for it
        again (the request that shows it is already under way)."""
        for widget in (self.strip, self.index):
            widget.blockSignals(True)
            (widget.setCurrentRow if widget is self.strip else widget.setValue)(index)
            widget.blockSignals(False)

    def show_sample(self, index: int, label: int, display: np.ndarray,
                    model_input: np.ndarray) -> None:
        self._select(index)
        self.source.setText(f"Dataset example {index} · true label {self.class_name(label)}")
        shape = "×".join(map(str, np.shape(model_input)))
        if self.digits:
            self._previews([display, model_input[0]], ["8×8 digit", f"model input {shape}"])
            self.steps.setText("The dataset's 8x8 digit (0..16) → scaled to 0..1 → "
                               "upsampled 2x (bilinear) to the model's 16x16 input.")
            return
        # The user's own arrays reach the model untouched; the picture is only a view.
        self._previews([display], [f"example {index} ({shape})"])
        what = ("the mean of its channels" if np.ndim(model_input) == 3
                and np.shape(model_input)[0] > 1 else "it")
        self.steps.setText(f"Your data ({self.source_name}), as given ({shape}). The "
                           f"picture shows {what}, scaled to the data's range.")

    def show_image(self, converted: ConvertedImage) -> None:
        self.strip.blockSignals(True)
        self.strip.clearSelection()
        self.strip.setCurrentRow(-1)
        self.strip.blockSignals(False)
        self.source.setText(f"Image file {Path(converted.path).name}"
                            if Path(converted.path).is_file() else "Your drawing")
        self.source.setToolTip(converted.path)
        self._previews([converted.original, converted.digit, converted.model_input[0]],
                       ["your image", "8×8", "model input"])
        self.steps.setText(" → ".join(converted.steps))

    def _previews(self, images: list, captions: list[str]) -> None:
        for i, label in enumerate(self.previews):
            if i < len(images):
                label.setPixmap(pixmap(images[i], 64))
                label.setToolTip(captions[i])
            else:
                label.clear()
            label.setVisible(i < len(images))  # an empty one would only take room

    @Slot(int)
    def _on_strip_row(self, row: int) -> None:
        if row >= 0:
            self.sample_requested.emit(row)

    @Slot(int)
    def _on_index(self, value: int) -> None:
        self.sample_requested.emit(value)

    @Slot(bool)
    def _on_draw_toggled(self, on: bool) -> None:
        self.draw.setVisible(on)
        if on:  # in a narrow window the canvas may lie beyond the visible part: show it
            QTimer.singleShot(0, self, self._show_canvas)

    def _show_canvas(self) -> None:
        self.scroll_area.ensureWidgetVisible(self.draw)

    @Slot()
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image of a digit", "",
                                              IMAGE_FILTER)
        if path:
            self.image_file_chosen.emit(path)
