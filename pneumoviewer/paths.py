"""Where bundled resources and per-user data live, in a checkout, an installed wheel and a frozen bundle."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import platformdirs

APP_NAME = "PneumoViewer"


def resources_dir() -> Path:
    """The package data folder `pneumoviewer/resources/` (model, demo studies, icons, desktop entry).

    Found through importlib.resources, so the same call serves a checkout (editable install), an
    installed wheel and a PyInstaller bundle (whose frozen importer answers with a folder under
    sys._MEIPASS). Its files are opened by path (memory-mapped weights, Qt icons, pydicom), so the
    package must be on disk: a zipped import is refused with a clear message.
    """
    folder = files("pneumoviewer") / "resources"
    if not isinstance(folder, Path):
        raise RuntimeError(f"pneumoviewer's resources are inside an archive ({folder}); install the package unzipped")
    return folder


def default_model_path() -> Path:
    """The bundled default model's weights (safetensors with its JSON card beside it)."""
    return resources_dir() / "models" / "default.safetensors"


def demo_dir() -> Path:
    return resources_dir() / "demo"


ICON_SIZES = (16, 32, 48, 64, 128, 256)


def icon_path(size: int | None = None) -> Path:
    """The application icon: the SVG when `size` is None, else the rendered PNG of that size."""
    if size is None:
        return resources_dir() / "icons" / "pneumoviewer.svg"
    if size not in ICON_SIZES:
        raise ValueError(f"no {size} px icon; sizes are {', '.join(map(str, ICON_SIZES))}")
    return resources_dir() / "icons" / f"pneumoviewer-{size}.png"


def user_data_dir() -> Path:
    """Per-user folder for session files (autosave) and recent folders; created on demand."""
    path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def pacs_cache_dir() -> Path:
    """Where studies retrieved from a PACS are kept (one folder per study; opened as any folder)."""
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "pacs"
