"""FileOpener: files from the menu, the recent list or a drop — and the trust question
for model files that are code, remembered per file content."""

from __future__ import annotations

from typing import Iterable, Optional

from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtWidgets import QWidget

from gui.data_dialog import DataDialog
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
        workbench.data_needed.connect(self._on_data_needed)
        self.data_dialog: Optional[DataDialog] = None
        #: The command line's FILE with its --data and --trust (set_command_line).
        self.command_line: Optional[tuple[str, Optional[str], bool]] = None
        #: The last question the command line answered (scripted runs do not fail on it).
        self.answered = None
        workbench.file_opened.connect(self._on_file_opened)

    def set_command_line(self, path: str, data: Optional[str] = None,
                         trust: bool = False) -> None:
        """``main.py FILE --data DATA --trust``: the questions about FILE that the
        flags answer are not asked (trust only with --trust; the window asks without)."""
        self.command_line = (path, data, trust)

    def open_given(self, path: str) -> None:
        """Open ``path`` as the command line's FILE: with its ``--data``, as a model on
        that data from the start — a model that opens without a question (a Keras file,
        weights of a built-in architecture) would otherwise be evaluated on the built-in
        data and the flag lost."""
        data, _ = self._flags_for(path)
        if data:
            self.workbench.open_checkpoint(path, None, None, data)
        else:
            self.workbench.open_file(path)

    def _flags_for(self, path: str) -> tuple[Optional[str], bool]:
        if self.command_line is None:
            return None, False
        given, data, trust = self.command_line
        try:
            same = Path(given).resolve() == Path(path).resolve()
        except OSError:
            same = False
        return (data, trust) if same else (None, False)

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
        data, trust = self._flags_for(error.path)
        if trust:
            self.answered = error
            self.workbench.open_checkpoint(error.path, error.sha256, None, data)
            return
        if self.settings is not None and self.settings.is_trusted(error.sha256):
            self.workbench.open_checkpoint(error.path, error.sha256, None, data)
            return
        self.dialog = TrustDialog(error, self.window)
        self.dialog.finished.connect(self._on_trust_answered)
        self.dialog.open()  # non-blocking; Cancel is the default

    @Slot(object)
    def _on_spec_needed(self, error) -> None:
        known = self.settings.input_spec(error.sha256) if self.settings else None
        if known is not None:
            # A file of code was trusted before it was asked about: keep that trust.
            self.workbench.open_checkpoint(error.path, error.trusted_sha256, known)
            return
        self.spec_dialog = InputSpecDialog(error, self.window)
        self.spec_dialog.accepted.connect(self._on_spec_given)
        self.spec_dialog.open()

    @Slot(object)
    def _on_data_needed(self, error) -> None:
        data, _ = self._flags_for(error.path)
        if data:
            self.answered = error
            self.workbench.open_checkpoint(error.path, error.trusted_sha256, None, data)
            return
        self.messages.show_message(str(error), "info")
        self.data_dialog = DataDialog(error, self.window)
        self.data_dialog.accepted.connect(self._on_data_chosen)
        self.data_dialog.rejected.connect(self._on_data_refused)
        self.data_dialog.open()  # non-blocking, like the trust question

    @Slot()
    def _on_data_chosen(self) -> None:
        dialog = self.data_dialog
        chosen = dialog.chosen()
        if not chosen:
            self._on_data_refused()
            return
        error = dialog.error
        self.workbench.open_checkpoint(error.path, error.trusted_sha256, None, chosen)

    @Slot()
    def _on_data_refused(self) -> None:
        name = Path(self.data_dialog.error.path).name
        self.messages.show_message(f"{name} was not opened: it needs your inputs and "
                                   "labels to be evaluated on.", "info")

    @Slot()
    def _on_spec_given(self) -> None:
        dialog = self.spec_dialog
        spec = dialog.spec()
        if self.settings is not None:
            self.settings.remember_input_spec(dialog.error.sha256, spec)
        self.workbench.open_checkpoint(dialog.error.path, dialog.error.trusted_sha256, spec)

    @Slot(int)
    def _on_trust_answered(self, _result: int) -> None:
        dialog = self.dialog
        if not dialog.trusted():
            self.messages.show_message(f"{dialog.error.path} was not opened.", "info")
            return
        if self.settings is not None:
            self.settings.trust(dialog.error.sha256, dialog.error.path)
        data, _ = self._flags_for(dialog.error.path)  # --data without --trust
        self.workbench.open_checkpoint(dialog.error.path, dialog.error.sha256, None, data)
