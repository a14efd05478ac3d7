"""Docks, menus and the worklist header of the main window (layout only, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from pneumoviewer.ui.main_window import MainWindow

STATUS_FILTERS = (
    ("All cases", None),
    ("To review", frozenset({"unreviewed"})),
    ("Done", frozenset({"accepted", "corrected", "rejected"})),
    ("Accepted", frozenset({"accepted"})),
    ("Corrected", frozenset({"corrected"})),
    ("Rejected (no pneumothorax)", frozenset({"rejected"})),
)


@dataclass
class Panels:
    status_filter: QComboBox
    counter: QLabel
    unreadable_box: QGroupBox
    unreadable_list: QListWidget
    recent_menu: QMenu
    worklist_dock: QDockWidget | None = None


def build(window: MainWindow) -> Panels:
    window.setCentralWidget(window.case_view)
    panels = Panels(QComboBox(), QLabel(), QGroupBox("Unreadable files"), QListWidget(), QMenu("Open &recent"))
    for label, statuses in STATUS_FILTERS:
        panels.status_filter.addItem(label, statuses)
    panels.status_filter.currentIndexChanged.connect(
        lambda _: window.worklist_filter.set_statuses(panels.status_filter.currentData())
    )
    panels.counter.setObjectName("review-counter")
    panels.counter.setStyleSheet("color: #c9d1d9; padding: 2px 0;")
    box_layout = QVBoxLayout(panels.unreadable_box)
    box_layout.addWidget(panels.unreadable_list)
    panels.unreadable_list.setWordWrap(True)
    panels.unreadable_list.setResizeMode(QListWidget.ResizeMode.Adjust)  # re-wrap when the dock is resized
    panels.unreadable_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    panels.unreadable_box.setVisible(False)

    worklist_panel = QWidget()
    column = QVBoxLayout(worklist_panel)
    column.setContentsMargins(4, 4, 4, 4)
    column.addWidget(panels.status_filter)
    column.addWidget(panels.counter)
    column.addWidget(window.worklist, 3)
    column.addWidget(panels.unreadable_box, 1)
    # A minimum the table stays usable at; its preferred width is applied on first show (fit_docks),
    # so on a 1280-pixel screen the film keeps most of the window.
    panels.worklist_dock = _dock(window, "Worklist", worklist_panel, Qt.DockWidgetArea.LeftDockWidgetArea, 260)

    side = QWidget()
    side_column = QVBoxLayout(side)
    side_column.setContentsMargins(4, 4, 4, 4)
    for box in (window.tools.review_box, window.info.findings_box, window.tools.edit_box,
                window.tools.overlay_box, window.tools.window_box, window.info.case_box):
        side_column.addWidget(box)
    side_column.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidget(side)
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    width = side.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
    _dock(window, "Tools and findings", scroll, Qt.DockWidgetArea.RightDockWidgetArea, width)
    _menus(window, panels.recent_menu)
    window.panels = panels
    from pneumoviewer.ui.dialogs import recent_folders

    refresh_recent_menu(window, recent_folders())
    return panels


def _dock(window: MainWindow, title: str, widget: QWidget, area: Qt.DockWidgetArea, width: int) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(title)
    dock.setWidget(widget)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
    widget.setMinimumWidth(width)
    window.addDockWidget(area, dock)
    return dock


def fit_docks(window: MainWindow) -> None:
    """Default worklist width: all its columns, but at most a third of the window (the film comes first)."""
    wanted = window.worklist.preferred_width() + 12
    window.resizeDocks([window.panels.worklist_dock], [min(wanted, window.width() // 3)],
                       Qt.Orientation.Horizontal)


def _menus(window: MainWindow, recent_menu: QMenu) -> None:
    a = window.actions
    bar = window.menuBar()
    sections = {
        "&File": ["open_folder", "open_files", recent_menu, "open_demo", None, "import_csv", "export_csv",
                  "export_png", None, "quit"],
        "&Worklist": ["next_case", "previous_case", None, "predict_all", "cancel_work", None, "choose_model"],
        "&Review": ["status_accepted", "status_corrected", "status_rejected", "status_unreviewed"],
        "&Edit": ["undo", "redo", None, "mode_pan", "mode_window", "mode_brush", "mode_eraser", "mode_fill",
                  "brush_smaller", "brush_larger", None, "start_from_ai", "clear_mask"],
        "&View": ["fit", "invert", None, "window_default", "window_full", "window_narrow", "window_wide", None,
                  "toggle_ai", "toggle_ai_contour", "toggle_edit", "toggle_heatmap"],
        "&Help": ["shortcuts", "about_model"],
    }
    for title, entries in sections.items():
        menu = bar.addMenu(title)
        for entry in entries:
            if entry is None:
                menu.addSeparator()
            elif isinstance(entry, QMenu):
                menu.addMenu(entry)
            else:
                menu.addAction(a[entry])


def refresh_recent_menu(window: MainWindow, folders: list[Path]) -> None:
    menu = window.panels.recent_menu
    menu.clear()
    for folder in folders:
        menu.addAction(str(folder)).triggered.connect(lambda _=False, f=folder: window.open_folder(f))
    menu.setEnabled(bool(folders))


def show_unreadable(window: MainWindow, reasons: list[str]) -> None:
    panels = window.panels
    panels.unreadable_list.clear()
    for reason in reasons:
        # Zero-width spaces after separators let a long path or UID wrap instead of running off the panel.
        item = QListWidgetItem(reason.replace("/", "/\u200b").replace("\\", "\\\u200b").replace(".", ".\u200b"))
        item.setToolTip(reason)
        panels.unreadable_list.addItem(item)
    panels.unreadable_box.setTitle(f"Unreadable files ({len(reasons)})")
    panels.unreadable_box.setVisible(bool(reasons))


def show_counter(window: MainWindow, text: str) -> None:
    window.panels.counter.setText(text)


def _settings() -> QSettings:
    from pneumoviewer.paths import user_data_dir

    return QSettings(str(user_data_dir() / "window.ini"), QSettings.Format.IniFormat)


def restore_preferences(window: MainWindow) -> None:
    """Window size, dock layout, overlay opacities and brush size as the user left them."""
    settings = _settings()
    window.layout_restored = settings.contains("geometry")
    if window.layout_restored:
        window.restoreGeometry(settings.value("geometry"))
        window.restoreState(settings.value("state"))
    tools = window.tools
    for name, control in (("ai", tools.ai_overlay), ("edit", tools.edit_overlay), ("heatmap", tools.heatmap_overlay)):
        control.slider.setValue(int(settings.value(f"opacity/{name}", control.slider.value())))
    tools.brush_slider.setValue(int(settings.value("brush", tools.brush_slider.value())))
    window.actions["toggle_ai_contour"].setChecked(settings.value("ai_contour", "true") == "true")


def save_preferences(window: MainWindow) -> None:
    settings = _settings()
    settings.setValue("geometry", window.saveGeometry())
    settings.setValue("state", window.saveState())
    tools = window.tools
    for name, control in (("ai", tools.ai_overlay), ("edit", tools.edit_overlay), ("heatmap", tools.heatmap_overlay)):
        settings.setValue(f"opacity/{name}", control.slider.value())
    settings.setValue("brush", tools.brush_slider.value())
    settings.setValue("ai_contour", "true" if window.actions["toggle_ai_contour"].isChecked() else "false")
    settings.sync()
