"""FileMenu: Open image, Recent images, Quit."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenuBar


class FileMenu(QObject):
    """Owns the File menu; the window connects its signals."""

    open_requested = Signal()
    model_file_chosen = Signal(str)
    data_chosen = Signal(str)
    export_requested = Signal(str)
    file_chosen = Signal(str)
    quit_requested = Signal()

    def __init__(self, bar: QMenuBar, recent: Sequence[str]) -> None:
        super().__init__(bar)
        self.menu = bar.addMenu("&File")
        self.open_action = QAction("&Open image…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_model_action = QAction("Open &model file…", self)
        self.open_model_action.setShortcut("Ctrl+Shift+O")
        self.data_file_action = QAction("Evaluate on a data &file (.npz, .csv)…", self)
        self.data_folder_action = QAction("Evaluate on a labelled &folder of images…", self)
        self.recent_menu = self.menu.addMenu("Recent files")
        self.export_action = QAction("&Export view (PNG + CSV)…", self)
        self.export_action.setShortcut("Ctrl+E")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.menu.insertAction(self.recent_menu.menuAction(), self.open_action)
        self.menu.insertAction(self.recent_menu.menuAction(), self.open_model_action)
        self.menu.insertAction(self.recent_menu.menuAction(), self.data_file_action)
        self.menu.insertAction(self.recent_menu.menuAction(), self.data_folder_action)
        self.menu.addAction(self.export_action)
        self.menu.addSeparator()
        self.menu.addAction(quit_action)
        self.open_action.triggered.connect(self.open_requested)
        self.open_model_action.triggered.connect(self._on_open_model)
        self.data_file_action.triggered.connect(self._on_data_file)
        self.data_folder_action.triggered.connect(self._on_data_folder)
        quit_action.triggered.connect(self.quit_requested)
        self.export_action.triggered.connect(self._on_export)
        self.set_recent(recent)

    def set_recent(self, files: Sequence[str]) -> None:
        self.recent_menu.clear()
        for path in files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setData(path)
            action.triggered.connect(self._on_recent)
        self.recent_menu.setEnabled(bool(files))

    @Slot()
    def _on_open_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.menu, "Open a model: PyTorch weights (.pt/.pth/.ckpt), .safetensors, "
            "ONNX (.onnx) or Keras (.keras/.h5)", "",
            "Model files (*.pt *.pth *.ckpt *.bin *.safetensors *.onnx *.keras *.h5);;"
            "All files (*)")
        if path:
            self.model_file_chosen.emit(path)

    @Slot()
    def _on_data_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.menu, "Labelled data: .npz with inputs and labels, or .csv (label last)",
            "", "Data (*.npz *.npy *.csv);;All files (*)")
        if path:
            self.data_chosen.emit(path)

    @Slot()
    def _on_data_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self.menu, "A folder with one sub-folder of images per class")
        if path:
            self.data_chosen.emit(path)

    @Slot()
    def _on_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.menu, "Export the view (a CSV of its "
                                              "numbers is saved beside the PNG)",
                                              "view.png", "PNG images (*.png)")
        if path:
            self.export_requested.emit(path)

    @Slot()
    def _on_recent(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.file_chosen.emit(action.data())
