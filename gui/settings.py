"""What persists between runs: window geometry, the last model, layer and input, and
recently opened files (QSettings, INI format so it is readable and easy to reset)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 8


class AppSettings:
    """A thin typed face over QSettings; pass ``path`` to use a specific INI file."""

    def __init__(self, path: Optional[str] = None) -> None:
        if path is None:
            self._qs = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                                 "Mechscope", "Mechscope")
        else:
            self._qs = QSettings(path, QSettings.Format.IniFormat)

    def _get(self, key: str, default=None, kind=str):
        value = self._qs.value(key, default)
        try:
            return default if value is None else kind(value)
        except (TypeError, ValueError):  # a hand-edited or stale file: ignore the value
            return default

    @property
    def last_model(self) -> Optional[str]:
        return self._get("session/model")

    @property
    def last_layer(self) -> Optional[str]:
        return self._get("session/layer")

    @property
    def last_input(self) -> int:
        return self._get("session/input", 0, int)

    def remember(self, model: str, layer: str, input_index: int) -> None:
        self._qs.setValue("session/model", model)
        self._qs.setValue("session/layer", layer)
        self._qs.setValue("session/input", int(input_index))

    def recent_files(self) -> list[str]:
        value = self._qs.value("files/recent", [])
        files = [value] if isinstance(value, str) else list(value or [])
        return [f for f in files if isinstance(f, str)]

    def add_recent(self, path: str) -> list[str]:
        files = [str(Path(path))] + [f for f in self.recent_files() if f != str(Path(path))]
        files = files[:MAX_RECENT]
        self._qs.setValue("files/recent", files)
        return files

    def is_trusted(self, sha256: str) -> bool:
        """Trust is remembered by file content (SHA-256), never by name or session."""
        return bool(self._qs.value(f"trust/{sha256}", ""))

    def trust(self, sha256: str, path: str) -> None:
        self._qs.setValue(f"trust/{sha256}", path)
        self._qs.sync()

    def input_spec(self, sha256: str):
        """The input description the user gave for this model file, if any."""
        from core.files.preprocess import InputSpec

        raw = self._qs.value(f"input_spec/{sha256}", "")
        try:
            return InputSpec(**json.loads(raw)) if raw else None
        except (TypeError, ValueError):
            return None

    def remember_input_spec(self, sha256: str, spec) -> None:
        self._qs.setValue(f"input_spec/{sha256}", json.dumps(asdict(spec)))
        self._qs.sync()

    def geometry(self) -> Optional[QByteArray]:
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> Optional[QByteArray]:
        value = self._qs.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._qs.setValue("window/geometry", geometry)
        self._qs.setValue("window/state", state)
        self._qs.sync()
