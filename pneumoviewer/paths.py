"""Where bundled resources and per-user data live, in a checkout and in a frozen bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs

APP_NAME = "PneumoViewer"


def resources_dir() -> Path:
    """The `resources/` folder: beside the package in a checkout, inside a PyInstaller bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root is not None:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


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
