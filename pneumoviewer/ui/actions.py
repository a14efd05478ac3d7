"""Every user command as a named action with its shortcuts, in one table.

The window connects actions by name; Help → Keyboard shortcuts lists this table, so what the user
reads and what the keys do cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    shortcuts: tuple[str, ...] = ()
    checkable: bool = False
    checked: bool = False
    label: str = ""  # short text for tool buttons (defaults to `text`)


SCORE_UNVALIDATED_TEXT = "Score images the AI is not validated for"  # io.ai_scope: other modalities, body parts

ACTION_SPECS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec("open_folder", "Open &folder…", ("Ctrl+O",)),
    ActionSpec("open_files", "Open f&iles…", ("Ctrl+Shift+O",)),
    ActionSpec("open_demo", "Open &demo studies"),
    ActionSpec("open_pacs", "Open from P&ACS…"),
    ActionSpec("import_csv", "&Import annotations CSV…", ("Ctrl+I",)),
    ActionSpec("export_csv", "&Export annotations CSV…", ("Ctrl+E",)),
    ActionSpec("export_png", "Export &PNG masks…", ("Ctrl+Shift+E",)),
    ActionSpec("export_dicom", "Export DICOM &SEG…"),
    ActionSpec("quit", "&Quit", ("Ctrl+Q",)),
    # Worklist
    ActionSpec("next_case", "&Next case", ("Down", "J", "PgDown")),
    ActionSpec("previous_case", "&Previous case", ("Up", "K", "PgUp")),
    ActionSpec("predict_all", "&Predict all cases", ("Ctrl+P",)),
    ActionSpec("choose_model", "Use another AI &model…"),
    ActionSpec("score_unvalidated", SCORE_UNVALIDATED_TEXT, checkable=True),
    ActionSpec("improve_ai", "&Improve the AI from my reviews…"),
    ActionSpec("model_versions", "AI mo&dels…"),
    ActionSpec("cancel_work", "&Cancel background work", ("Esc",)),
    # Review status
    ActionSpec("status_accepted", "&Accept AI result", ("A",), label="Accept  A"),
    ActionSpec("status_corrected", "Mark &corrected", ("C",), label="Corrected  C"),
    ActionSpec("status_rejected", "&Reject: no pneumothorax", ("R",), label="Reject  R"),
    ActionSpec("status_unreviewed", "Mark &unreviewed", ("U",), label="Unreviewed  U"),
    ActionSpec("send_pacs", "&Send results to PACS…"),
    ActionSpec("save_case_report", "Save case &report…", ("Ctrl+R",)),
    ActionSpec("save_worklist_report", "Save &worklist report…"),
    # Editing
    ActionSpec("undo", "&Undo", ("Ctrl+Z",), label="Undo"),
    ActionSpec("redo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), label="Redo"),
    ActionSpec("mode_pan", "&Pan / zoom", ("H", "Space"), checkable=True, checked=True, label="Pan  H"),
    ActionSpec("mode_window", "&Window / level drag", ("W",), checkable=True, label="W/L  W"),
    ActionSpec("mode_brush", "&Brush", ("B",), checkable=True, label="Brush  B"),
    ActionSpec("mode_eraser", "&Eraser", ("E",), checkable=True, label="Eraser  E"),
    ActionSpec("mode_fill", "&Fill region", ("F",), checkable=True, label="Fill  F"),
    ActionSpec("brush_smaller", "Brush s&maller", ("[",)),
    ActionSpec("brush_larger", "Brush &larger", ("]",)),
    ActionSpec("start_from_ai", "&Start from AI mask", ("Ctrl+M",), label="Start from AI mask"),
    ActionSpec("clear_mask", "C&lear mask", ("Ctrl+Backspace",), label="Clear"),
    # View
    ActionSpec("fit", "&Fit to window", ("Home", "0"), label="Fit  0"),
    ActionSpec("invert", "&Invert grey scale", ("I",), checkable=True, label="Invert  I"),
    ActionSpec("window_default", "Window: DICOM &default", ("1",), label="DICOM  1"),
    ActionSpec("window_full", "Window: f&ull range", ("2",), label="Full  2"),
    ActionSpec("window_narrow", "Window: &high contrast", ("3",), label="Narrow  3"),
    ActionSpec("window_wide", "Window: &low contrast", ("4",), label="Wide  4"),
    ActionSpec("toggle_ai", "Show &AI mask", ("M",), checkable=True, checked=True, label="AI mask  M"),
    ActionSpec("toggle_ai_contour", "AI mask as c&ontour", ("O",), checkable=True, checked=True, label="Contour  O"),
    ActionSpec("toggle_edit", "Show &edited mask", ("N",), checkable=True, checked=True, label="Edited mask  N"),
    ActionSpec("toggle_heatmap", "Show &Grad-CAM heatmap", ("G",), checkable=True, label="Grad-CAM  G"),
    ActionSpec("toggle_lesions", "Show &lesion boxes and labels", ("L",), checkable=True, checked=True,
               label="Lesions  L"),
    ActionSpec("show_statistics", "Dataset &statistics", ("Ctrl+Shift+T",), checkable=True),
    # Help
    ActionSpec("shortcuts", "&Keyboard shortcuts", ("F1",)),
    ActionSpec("about_model", "About the AI &model"),
)


MOUSE_GESTURES: tuple[tuple[str, str], ...] = (
    ("Zoom", "Mouse wheel"),
    ("Pan", "Middle drag (any mode), left drag in Pan mode"),
    ("Window / level", "Right drag (any mode), left drag in W/L mode: up/down level, left/right width"),
    ("Paint / erase", "Left drag in Brush / Eraser mode (one undo step per drag)"),
    ("Fill a closed region", "Left click in Fill mode"),
)


def build_actions(parent: QWidget) -> dict[str, QAction]:
    """Create every action on `parent` (so its shortcuts work anywhere in the window)."""
    actions: dict[str, QAction] = {}
    for spec in ACTION_SPECS:
        action = QAction(spec.text, parent)
        action.setObjectName(spec.name)
        action.setIconText(spec.label or spec.text.replace("&", ""))
        if spec.shortcuts:
            action.setToolTip(f"{spec.text.replace('&', '')} ({', '.join(spec.shortcuts)})")
        if spec.shortcuts:
            action.setShortcuts([QKeySequence(key) for key in spec.shortcuts])
        if spec.checkable:
            action.setCheckable(True)
            action.setChecked(spec.checked)
        parent.addAction(action)
        actions[spec.name] = action
    return actions


def shortcut_table() -> list[tuple[str, str]]:
    """(command, keys) rows for the help dialog: every keyboard shortcut, then the mouse gestures."""
    keys = [
        (spec.text.replace("&", "").rstrip("…"), ", ".join(spec.shortcuts))
        for spec in ACTION_SPECS
        if spec.shortcuts
    ]
    return keys + list(MOUSE_GESTURES)
