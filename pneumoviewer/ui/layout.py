"""Docks, menus and the worklist header of the main window: layout only (the window connects them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMenuBar,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from pneumoviewer.ui.info_panel import InfoPanel
from pneumoviewer.ui.tools import ToolPanel
from pneumoviewer.ui.worklist_table import WorklistTable

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
    worklist_dock: QDockWidget


def build(window: QMainWindow, case_view: QWidget, worklist: WorklistTable, tools: ToolPanel, info: InfoPanel,
          actions: dict[str, QAction], triage: QWidget | None = None) -> Panels:
    """The film in the middle, the worklist docked left, tools and findings right (the triage-flag box,
    when given, under the findings), and the menus."""
    window.setCentralWidget(case_view)
    panels = Panels(QComboBox(), QLabel(), QGroupBox("Unreadable files"), QListWidget(), QMenu("Open &recent"),
                    QDockWidget("Worklist", window))
    for label, statuses in STATUS_FILTERS:
        panels.status_filter.addItem(label, statuses)
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
    column.addWidget(worklist, 3)
    column.addWidget(panels.unreadable_box, 1)
    # A minimum the table stays usable at; its preferred width is applied on first show (fit_docks),
    # so on a 1280-pixel screen the film keeps most of the window.
    _dock(window, panels.worklist_dock, worklist_panel, Qt.DockWidgetArea.LeftDockWidgetArea, 260)

    side = QWidget()
    side_column = QVBoxLayout(side)
    side_column.setContentsMargins(4, 4, 4, 4)
    for box in (tools.review_box, info.findings_box, triage, info.lesions_box, tools.edit_box, tools.overlay_box,
                tools.window_box, info.case_box):
        if box is not None:
            side_column.addWidget(box)
    side_column.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidget(side)
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    width = side.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
    _dock(window, QDockWidget("Tools and findings", window), scroll, Qt.DockWidgetArea.RightDockWidgetArea, width)
    _menus(window.menuBar(), actions, panels.recent_menu)
    return panels


def _dock(window: QMainWindow, dock: QDockWidget, widget: QWidget, area: Qt.DockWidgetArea, width: int) -> None:
    dock.setObjectName(dock.windowTitle())  # the saved layout finds docks by name
    dock.setWidget(widget)
    features = QDockWidget.DockWidgetFeature
    dock.setFeatures(features.DockWidgetMovable | features.DockWidgetFloatable)
    widget.setMinimumWidth(width)
    window.addDockWidget(area, dock)


def fit_docks(window: QMainWindow, worklist_dock: QDockWidget, worklist: WorklistTable) -> None:
    """Default worklist width: all its columns, but at most a third of the window (the film comes first)."""
    wanted = worklist.preferred_width() + 12
    window.resizeDocks([worklist_dock], [min(wanted, window.width() // 3)], Qt.Orientation.Horizontal)


def _menus(bar: QMenuBar, a: dict[str, QAction], recent_menu: QMenu) -> None:
    sections: dict[str, list[str | QMenu | None]] = {
        "&File": ["open_folder", "open_files", recent_menu, "open_demo", "open_pacs", None, "import_csv", "export_csv",
                  "export_png", "export_dicom", None, "quit"],
        "&Worklist": ["next_case", "previous_case", None, "predict_all", "cancel_work", None, "choose_model",
                      "score_unvalidated", None, "improve_ai", "model_versions"],
        "&Review": ["status_accepted", "status_corrected", "status_rejected", "status_unreviewed", None,
                    "save_case_report", "save_worklist_report", None, "send_pacs"],
        "&Edit": ["undo", "redo", None, "mode_pan", "mode_window", "mode_brush", "mode_eraser", "mode_fill",
                  "brush_smaller", "brush_larger", None, "start_from_ai", "clear_mask"],
        "&View": ["fit", "invert", None, "window_default", "window_full", "window_narrow", "window_wide", None,
                  "toggle_ai", "toggle_ai_contour", "toggle_edit", "toggle_heatmap", "toggle_lesions", None,
                  "show_statistics"],
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


def refresh_recent_menu(menu: QMenu, folders: list[Path], open_folder: Callable[[Path], None]) -> None:
    menu.clear()
    for folder in folders:
        menu.addAction(str(folder)).triggered.connect(lambda _=False, f=folder: open_folder(f))
    menu.setEnabled(bool(folders))


def show_unreadable(panels: Panels, reasons: list[str]) -> None:
    panels.unreadable_list.clear()
    for reason in reasons:
        # Zero-width spaces after separators let a long path or UID wrap instead of running off the panel.
        item = QListWidgetItem(reason.replace("/", "/\u200b").replace("\\", "\\\u200b").replace(".", ".\u200b"))
        item.setToolTip(reason)
        panels.unreadable_list.addItem(item)
    panels.unreadable_box.setTitle(f"Unreadable files ({len(reasons)})")
    panels.unreadable_box.setVisible(bool(reasons))
