"""Render the application icon's PNG sizes (and the Windows .ico / macOS .icns) from its SVG.

Run after editing pneumoviewer/resources/icons/pneumoviewer.svg and commit the results:
    .venv/bin/python packaging/render_icons.py
The rendered files are committed so neither the app nor the launcher installer needs an SVG
renderer at run time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image

from pneumoviewer.paths import ICON_SIZES, icon_path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtCore import Qt  # noqa: E402 (the platform must be chosen before Qt loads)
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

SOURCE = icon_path()
ICONS_DIR = SOURCE.parent
PNG_SIZES = ICON_SIZES
# macOS .icns wants its own ladder up to 512/1024; 256 is the largest we draw, and Finder
# upscales cleanly from it for the rare 512 px view.
ICNS_SIZES = (16, 32, 64, 128, 256)


def render_png(renderer: QSvgRenderer, size: int, path: Path) -> None:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(path), "PNG"):
        raise OSError(f"{path}: could not write the PNG")


def main() -> int:
    _app = QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        print(f"render_icons: {SOURCE}: not a valid SVG", file=sys.stderr)
        return 1
    for size in PNG_SIZES:
        render_png(renderer, size, icon_path(size))
    largest = Image.open(icon_path(PNG_SIZES[-1]))
    largest.save(ICONS_DIR / "pneumoviewer.ico", sizes=[(s, s) for s in PNG_SIZES])
    largest.save(ICONS_DIR / "pneumoviewer.icns", sizes=[(s, s) for s in ICNS_SIZES])
    print(f"wrote {len(PNG_SIZES)} PNGs, pneumoviewer.ico and pneumoviewer.icns into {ICONS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
