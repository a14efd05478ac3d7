"""The dark reading-room theme: low-glare greys, one accent, and a fixed colour per review status."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

STATUS_COLOURS = {
    "unreviewed": "#8b949e",
    "accepted": "#3fb950",
    "corrected": "#e3a008",
    "rejected": "#58a6ff",
}
AI_MASK_COLOUR = (255, 70, 70)  # red: the model's finding
EDIT_MASK_COLOUR = (40, 220, 120)  # green: the reader's mask
ACCENT = "#2f81f7"

_STYLE_SHEET = f"""
QWidget {{ font-size: 10pt; }}
QMainWindow, QDockWidget {{ background: #16181d; }}
QDockWidget::title {{ background: #1f2329; padding: 4px 8px; font-weight: bold; }}
QGroupBox {{ border: 1px solid #30363d; border-radius: 4px; margin-top: 14px; padding: 6px 4px 4px 4px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; color: #c9d1d9; font-weight: bold; }}
QToolButton {{ background: #21262d; border: 1px solid #30363d; border-radius: 3px; padding: 4px 6px; color: #e6edf3; }}
QToolButton:hover {{ background: #2d333b; }}
QToolButton:checked {{ background: {ACCENT}; border-color: {ACCENT}; color: white; }}
QToolButton:disabled {{ color: #6e7681; }}
QTableView {{ gridline-color: #262a31; selection-background-color: #1f4f8f; alternate-background-color: #1b1f24; }}
QHeaderView::section {{
    background: #1f2329; color: #c9d1d9; border: 0; border-right: 1px solid #30363d; padding: 3px 4px;
}}
QStatusBar {{ background: #1f2329; }}
QProgressBar {{ border: 1px solid #30363d; border-radius: 3px; text-align: center; background: #0d1117; }}
QProgressBar::chunk {{ background: {ACCENT}; }}
"""


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#16181d",
        QPalette.ColorRole.WindowText: "#e6edf3",
        QPalette.ColorRole.Base: "#0f1115",
        QPalette.ColorRole.AlternateBase: "#1b1f24",
        QPalette.ColorRole.Text: "#e6edf3",
        QPalette.ColorRole.Button: "#21262d",
        QPalette.ColorRole.ButtonText: "#e6edf3",
        QPalette.ColorRole.Highlight: "#1f4f8f",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: "#1f2329",
        QPalette.ColorRole.ToolTipText: "#e6edf3",
        QPalette.ColorRole.PlaceholderText: "#8b949e",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6e7681"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6e7681"))
    app.setPalette(palette)
    font = QFont(app.font())
    font.setPointSize(10)
    app.setFont(font)
    app.setStyleSheet(_STYLE_SHEET)
