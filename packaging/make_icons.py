"""Render the app icon (resources/icons/app.svg, the GUI's own) to the formats installers need.

PyInstaller wants ``.ico`` on Windows and ``.icns`` on macOS, and Pillow cannot read SVG, so the files are
rendered once with Qt's SVG renderer and committed under packaging/icons/. Rerun after app.svg changes:

    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py
"""

from __future__ import annotations

import io
from pathlib import Path

HERE = Path(__file__).resolve().parent
SVG = HERE.parent / "resources" / "icons" / "app.svg"
OUT = HERE / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)


def render(size: int):
    """The SVG as a Pillow RGBA image of ``size`` x ``size`` pixels."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(SVG)).render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(data))).convert("RGBA")


def main() -> None:
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QImage painting needs one
    OUT.mkdir(exist_ok=True)
    images = {size: render(size) for size in SIZES}
    images[256].save(OUT / "tl-desktop.png")
    images[256].save(OUT / "tl-desktop.ico", sizes=[(s, s) for s in SIZES if s <= 256])
    images[1024].save(OUT / "tl-desktop.icns")
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(HERE.parent)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
