"""What the app remembers between runs outside a session: window layout, overlay opacities, brush size,
the AI-contour choice, the triage point picked, and the recently opened folders."""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow

from pneumoviewer.paths import user_data_dir
from pneumoviewer.ui.tools import ToolPanel

_RECENT_FILE = "recent-folders.json"
_RECENT_LIMIT = 10


def recent_folders() -> list[Path]:
    try:
        entries = json.loads((user_data_dir() / _RECENT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [Path(entry) for entry in entries if isinstance(entry, str) and Path(entry).is_dir()]


def remember_folder(folder: Path) -> None:
    folder = Path(folder).resolve()
    entries = [folder] + [entry for entry in recent_folders() if entry != folder]
    text = json.dumps([str(entry) for entry in entries[:_RECENT_LIMIT]], indent=1)
    with suppress(OSError):  # a read-only profile only costs the recent list, never the session
        (user_data_dir() / _RECENT_FILE).write_text(text, encoding="utf-8")


def _settings() -> QSettings:
    return QSettings(str(user_data_dir() / "window.ini"), QSettings.Format.IniFormat)


def _overlays(tools: ToolPanel) -> tuple:
    return ("ai", tools.ai_overlay), ("edit", tools.edit_overlay), ("heatmap", tools.heatmap_overlay)


def restore_preferences(window: QMainWindow, tools: ToolPanel, ai_contour: QAction) -> bool:
    """Window size, dock layout, overlay opacities and brush size as the user left them.

    True when a saved dock layout was applied (else the default widths are set on first show).
    """
    settings = _settings()
    restored = settings.contains("geometry")
    if restored:
        window.restoreGeometry(settings.value("geometry"))
        window.restoreState(settings.value("state"))
    for name, control in _overlays(tools):
        control.slider.setValue(int(str(settings.value(f"opacity/{name}", control.slider.value()))))
    tools.brush_slider.setValue(int(str(settings.value("brush", tools.brush_slider.value()))))
    ai_contour.setChecked(settings.value("ai_contour", "true") == "true")
    return restored


def save_preferences(window: QMainWindow, tools: ToolPanel, ai_contour: QAction) -> None:
    settings = _settings()
    settings.setValue("geometry", window.saveGeometry())
    settings.setValue("state", window.saveState())
    for name, control in _overlays(tools):
        settings.setValue(f"opacity/{name}", control.slider.value())
    settings.setValue("brush", tools.brush_slider.value())
    settings.setValue("ai_contour", "true" if ai_contour.isChecked() else "false")
    settings.sync()


def triage_sensitivity() -> float | None:
    """The triage point the reader picked, as a sensitivity; None: the model card's own triage point."""
    value = _settings().value("triage/sensitivity", "default")
    try:
        sensitivity = float(str(value))
    except ValueError:
        return None
    return sensitivity if 0.0 < sensitivity <= 1.0 else None


def save_triage_sensitivity(sensitivity: float | None) -> None:
    """Kept at once (not at closing): the flags the reader chose stay after a crash too."""
    settings = _settings()
    settings.setValue("triage/sensitivity", "default" if sensitivity is None else f"{sensitivity:.6f}")
    settings.sync()
