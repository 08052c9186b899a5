"""FileOpener: files from the menu, the recent list or a drop — and the trust question
for model files that are code, remembered per file content."""

from __future__ import annotations

from typing import Iterable, Optional

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtWidgets import QWidget

from gui.file_menu import FileMenu
from gui.input_spec_dialog import InputSpecDialog
from gui.message_bar import MessageBar
from gui.settings import AppSettings
from gui.trust_dialog import TrustDialog
from gui.workbench import Workbench


class FileOpener(QObject):
    """Wires file opening between the menu, the workbench, the settings and the dialog."""

    def __init__(self, window: QWidget, workbench: Workbench, menu: FileMenu,
                 messages: MessageBar, settings: Optional[AppSettings]) -> None:
        super().__init__(window)
        self.window, self.workbench, self.menu = window, workbench, menu
        self.messages, self.settings = messages, settings
        self.dialog: Optional[TrustDialog] = None
        # One route for every way of opening a file (issue #10): the core decides by
        # content what it is, so the menu, a drop and the recent list cannot disagree.
        for chosen in (menu.file_chosen, menu.model_file_chosen, menu.data_chosen):
            chosen.connect(workbench.open_file)
        workbench.trust_needed.connect(self._on_trust_needed)
        workbench.spec_needed.connect(self._on_spec_needed)
        self.spec_dialog: Optional[InputSpecDialog] = None
        workbench.file_opened.connect(self._on_file_opened)

    def open_urls(self, urls: Iterable[QUrl]) -> bool:
        """Open the first local file of a drop; False if there was none."""
        for url in urls:
            if url.isLocalFile():
                self.workbench.open_file(url.toLocalFile())
                return True
        return False

    @Slot(str)
    def _on_file_opened(self, path: str) -> None:
        self.messages.hide()
        if self.settings is not None:
            self.menu.set_recent(self.settings.add_recent(path))

    @Slot(object)
    def _on_trust_needed(self, error) -> None:
        if self.settings is not None and self.settings.is_trusted(error.sha256):
            self.workbench.open_checkpoint(error.path, error.sha256)
            return
        self.dialog = TrustDialog(error, self.window)
        self.dialog.finished.connect(self._on_trust_answered)
        self.dialog.open()  # non-blocking; Cancel is the default

    @Slot(object)
    def _on_spec_needed(self, error) -> None:
        known = self.settings.input_spec(error.sha256) if self.settings else None
        if known is not None:
            self.workbench.open_checkpoint(error.path, None, known)
            return
        self.spec_dialog = InputSpecDialog(error, self.window)
        self.spec_dialog.accepted.connect(self._on_spec_given)
        self.spec_dialog.open()

    @Slot()
    def _on_spec_given(self) -> None:
        dialog = self.spec_dialog
        spec = dialog.spec()
        if self.settings is not None:
            self.settings.remember_input_spec(dialog.error.sha256, spec)
        self.workbench.open_checkpoint(dialog.error.path, None, spec)

    @Slot(int)
    def _on_trust_answered(self, _result: int) -> None:
        dialog = self.dialog
        if not dialog.trusted():
            self.messages.show_message(f"{dialog.error.path} was not opened.", "info")
            return
        if self.settings is not None:
            self.settings.trust(dialog.error.sha256, dialog.error.path)
        self.workbench.open_checkpoint(dialog.error.path, dialog.error.sha256)
