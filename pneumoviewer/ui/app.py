"""Start the desktop app: one QApplication, the dark theme, the main window on the given paths."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from pneumoviewer.paths import APP_NAME, demo_dir, icon_path
from pneumoviewer.ui.theme import apply_dark_theme


def application() -> QApplication:
    """The process's QApplication, created and themed once."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    # Workers run Python too: hand the GIL back to the GUI thread within 1 ms instead of 5 ms,
    # so a slot that touches large arrays is not held up several times by a busy worker.
    sys.setswitchinterval(0.001)
    app = QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    icon = icon_path(256)
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    apply_dark_theme(app)
    return app


def no_display_reason() -> str | None:
    """Why no window can open here (Linux without X11/Wayland), else None; Qt would abort instead."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return None
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return ("no display found (neither DISPLAY nor WAYLAND_DISPLAY is set); "
            "run it in a desktop session, or use the headless subcommands (pneumoviewer --help)")


def prepare_to_open_with_the_window(opening: list[Path]) -> None:
    """Before the window shows, when it opens `opening` at once (a launcher given a folder, `--demo`): import
    the review stack here. Opened at once, the folder's worker would import it beside the window's first
    paints: pydicom's dictionary alone holds the GIL ~65 ms (a 100-130 ms freeze). Here it only delays the
    window (0.2 s), whose first rows then come sooner."""
    if opening:
        from pneumoviewer.ui import tasks

        tasks.import_review_stack()


def run_app(paths: list[str], demo: bool) -> int:
    """Open the main window (on `paths`, or the demo studies) and run the event loop until it closes."""
    reason = no_display_reason()
    if reason is not None:
        print(f"pneumoviewer: {reason}", file=sys.stderr)
        return 2
    app = application()
    from pneumoviewer.ui.main_window import MainWindow

    opening = [demo_dir()] if demo else [Path(path) for path in paths]
    prepare_to_open_with_the_window(opening)
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    if opening:
        window.controller.open_paths(opening)
    return app.exec()
