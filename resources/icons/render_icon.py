"""Render mechscope.svg to mechscope.png (256 px) with Qt's SVG renderer.

``python resources/icons/render_icon.py`` — run after editing the SVG.
"""

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    app = QGuiApplication([])
    image = QImage(256, 256, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    QSvgRenderer(str(HERE / "mechscope.svg")).render(painter)
    painter.end()
    image.save(str(HERE / "mechscope.png"))
