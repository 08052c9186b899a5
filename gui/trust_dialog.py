"""TrustDialog: the per-file question before opening a model file that is code."""

from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QMessageBox, QWidget

MAX_GLOBALS = 15


class TrustDialog(QMessageBox):
    """Owns the explanation of the risk; Cancel is the default and the Escape answer."""

    def __init__(self, error, parent: Optional[QWidget] = None) -> None:
        super().__init__(QMessageBox.Icon.Warning, "Open a file that contains code?",
                         "", QMessageBox.StandardButton.NoButton, parent)
        self.error = error
        self.setText(
            f"<b>{error.path}</b> is {error.description}.<br><br>Opening it runs Python code "
            "stored in the file, with your permissions. A file from a stranger can delete "
            "or steal your files. Only continue if you trust where it came from. "
            "(A <i>state_dict</i> or <i>safetensors</i> file opens without this risk.)")
        names = list(error.unsafe_globals[:MAX_GLOBALS])
        more = len(error.unsafe_globals) - len(names)
        code = "\n".join(f"  {n}" for n in names) + (f"\n  … and {more} more" if more else "")
        self.setInformativeText(
            f"Size: {error.size:,} bytes\nSHA-256: {error.sha256}\n"
            + (f"Code it would call:\n{code}" if names else
               "Its code is compiled into the file (TorchScript) and cannot be listed."))
        self.cancel = self.addButton(QMessageBox.StandardButton.Cancel)
        self.trust = self.addButton("Trust this file and open it",
                                    QMessageBox.ButtonRole.AcceptRole)
        self.setDefaultButton(self.cancel)
        self.setEscapeButton(self.cancel)

    def trusted(self) -> bool:
        return self.clickedButton() is self.trust
