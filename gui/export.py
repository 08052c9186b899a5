"""One helper for every view: a PNG of what it shows and a CSV of the numbers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence

from PySide6.QtWidgets import QWidget


def export_view(widget: QWidget, header: Sequence[str], rows: Iterable[Sequence],
                png_path: str) -> tuple[Path, Path]:
    """Save ``widget`` as ``png_path`` and ``rows`` as a CSV beside it (same name)."""
    png = Path(png_path).with_suffix(".png")
    widget.grab().save(str(png))
    table = png.with_suffix(".csv")
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return png, table
