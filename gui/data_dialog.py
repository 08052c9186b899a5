"""DataDialog: asks for the inputs and labels a model of the user's own is evaluated
on, when its input fits no built-in dataset (``NeedsData``): a .npz or .csv file, or a
folder with one sub-folder of images per class. Non-blocking (``open()``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog, QWidget

ARRAYS = "Inputs and labels (*.npz *.csv)"
FOLDER = "A folder of images, one sub-folder per class"


class DataDialog(QFileDialog):
    """A file dialog for ``error`` (a ``NeedsData``) that also takes a folder: choosing
    the folder filter switches it to folders (Qt's own dialog, which can)."""

    def __init__(self, error, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent, f"Choose inputs and labels for {Path(error.path).name}")
        self.error = error
        self.setOption(QFileDialog.Option.DontUseNativeDialog)
        self.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        self.setFileMode(QFileDialog.FileMode.ExistingFile)
        self.setNameFilters([ARRAYS, FOLDER, "All files (*)"])
        self.setDirectory(str(Path(error.path).parent))
        self.filterSelected.connect(self._on_filter)

    @Slot(str)
    def _on_filter(self, name: str) -> None:
        folders = name == FOLDER
        self.setFileMode(QFileDialog.FileMode.Directory if folders
                         else QFileDialog.FileMode.ExistingFile)
        self.setOption(QFileDialog.Option.ShowDirsOnly, folders)

    def chosen(self) -> str:
        """The chosen file or folder ("" if none)."""
        files = self.selectedFiles()
        return files[0] if files else ""
