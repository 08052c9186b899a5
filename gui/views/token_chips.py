"""Token chips: each prompt token with the model's guess for the next one under it,
flowing into as many rows as the width needs; point at one for its detail, click it to
select it."""

from __future__ import annotations

import html
from typing import Optional

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QLabel, QLayout, QLayoutItem, QSizePolicy, QWidget

#: Longest piece a chip shows whole; longer ones (``<|endoftext|>``) end in "…".
CHIP_CHARS = 12
SPACING = 3


def short_piece(piece: str, limit: int = CHIP_CHARS) -> str:
    return piece if len(piece) <= limit else piece[:limit - 1] + "…"


class FlowLayout(QLayout):
    """Widgets left to right, wrapping to a new row where the width ends (Qt's flow
    layout example, trimmed): a row of tokens never scrolls sideways."""

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item: QLayoutItem) -> None:  # noqa: N802 (Qt override)
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> Optional[QLayoutItem]:  # noqa: N802 (Qt override)
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> Optional[QLayoutItem]:  # noqa: N802 (Qt override)
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:  # noqa: N802 (Qt override)
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt override)
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 (Qt override)
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 (Qt override)
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802 (Qt override)
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        return size

    def _arrange(self, rect: QRect, move: bool) -> int:
        x, y, row_height = rect.x(), rect.y(), 0
        for item in self._items:
            hint = item.sizeHint()
            if x + hint.width() > rect.right() + 1 and row_height > 0:
                x, y = rect.x(), y + row_height + SPACING
                row_height = 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + SPACING
            row_height = max(row_height, hint.height())
        return y + row_height - rect.y()


class TokenChip(QLabel):
    """One position: its token (bold) over the guess for the next token."""

    clicked = Signal(int)

    def __init__(self, position: int, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.position = position
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.set_selected(False)

    def show_guess(self, token: str, guess: str, colour: str, italic: bool) -> None:
        style = (f"color:{colour};" if colour else "") + ("font-style:italic;" if italic else "")
        self.setText(f"<b>{html.escape(short_piece(token))}</b><br>"
                     f"<span style='{style}'>{html.escape(short_piece(guess))}</span>")

    def set_selected(self, selected: bool) -> None:
        # A frame on every chip (transparent unless selected) keeps their sizes equal.
        edge = "#4c9be8" if selected else "transparent"
        self.setStyleSheet(f"QLabel {{ border: 1px solid {edge}; border-radius: 3px; "
                           "padding: 1px 3px; }")

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.position)
        super().mousePressEvent(event)


class TokenChips(QWidget):
    """Owns one chip per position; ``clicked(position)`` when one is clicked."""

    clicked = Signal(int)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.flow = FlowLayout(self)
        self.chips: list[TokenChip] = []
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def set_count(self, count: int) -> None:
        """As many chips as positions, reusing those there are (a capture after every
        ablation toggle need not rebuild 64 widgets)."""
        while len(self.chips) > count:
            chip = self.chips.pop()
            self.flow.removeWidget(chip)
            # Hidden now: deleteLater waits for the event loop, and a screenshot taken
            # before it showed the previous prompt's last tokens.
            chip.hide()
            chip.deleteLater()
        while len(self.chips) < count:
            chip = TokenChip(len(self.chips), self)
            chip.clicked.connect(self.clicked)
            self.flow.addWidget(chip)
            self.chips.append(chip)
        self.updateGeometry()

    def select(self, position: int) -> None:
        for chip in self.chips:
            chip.set_selected(chip.position == position)
