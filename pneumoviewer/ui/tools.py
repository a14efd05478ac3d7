"""The tool panel: interaction mode, brush size, overlay visibility/opacity and review status.

The panel only shows state and emits intent; it owns no mask or case data. Buttons reuse the named
actions from `actions.py`, so a button, its menu entry and its key are one command.
"""

from __future__ import annotations

from enum import Enum

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pneumoviewer.ui.theme import STATUS_COLOURS


class Mode(Enum):
    """What a left-button drag on the image does."""

    PAN = "pan"
    WINDOW = "window"
    BRUSH = "brush"
    ERASER = "eraser"
    FILL = "fill"


MODE_ACTIONS = {
    Mode.PAN: "mode_pan",
    Mode.WINDOW: "mode_window",
    Mode.BRUSH: "mode_brush",
    Mode.ERASER: "mode_eraser",
    Mode.FILL: "mode_fill",
}

BRUSH_SIZES_PX = (2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96)  # radius in image pixels


class OverlayControl(QWidget):
    """A visibility toggle (bound to an action) with an opacity slider."""

    sigOpacityChanged = Signal(float)

    def __init__(self, toggle: QAction, opacity: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        button = QToolButton()
        button.setDefaultAction(toggle)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.setMinimumWidth(120)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(round(opacity * 100))
        self.slider.setToolTip("Opacity")
        self.slider.valueChanged.connect(lambda value: self.sigOpacityChanged.emit(value / 100))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(button)
        layout.addWidget(self.slider, 1)


class ToolPanel(QObject):
    """The tool boxes (review, edit, overlays, window/level); the window decides where each goes."""

    sigBrushRadiusChanged = Signal(int)

    def __init__(self, actions: dict[str, QAction], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._actions = actions
        self.review_box = self._status_box()
        self.edit_box = self._edit_box()
        self.overlay_box = self._overlay_box()
        self.window_box = self._window_box()

    # -- status -----------------------------------------------------------------------------
    def _status_box(self) -> QGroupBox:
        box = QGroupBox("Review")
        grid = QGridLayout(box)
        for index, (name, status) in enumerate(
            (("status_accepted", "accepted"), ("status_corrected", "corrected"),
             ("status_rejected", "rejected"), ("status_unreviewed", "unreviewed"))
        ):
            button = self._button(name)
            button.setObjectName(f"status-button-{status}")
            button.setStyleSheet(f"QToolButton {{ border-left: 4px solid {STATUS_COLOURS[status]}; }}")
            grid.addWidget(button, index // 2, index % 2)
        return box

    # -- editing ----------------------------------------------------------------------------
    def _edit_box(self) -> QGroupBox:
        box = QGroupBox("Edit mask")
        grid = QGridLayout(box)
        for index, name in enumerate(MODE_ACTIONS.values()):
            grid.addWidget(self._button(name), index // 3, index % 3)
        grid.addWidget(self._button("start_from_ai"), 4, 0, 1, 3)
        self.brush_slider = QSlider(Qt.Orientation.Horizontal)
        self.brush_slider.setRange(0, len(BRUSH_SIZES_PX) - 1)
        self.brush_slider.setValue(BRUSH_SIZES_PX.index(16))
        self.brush_label = QLabel()
        self.brush_slider.valueChanged.connect(self._brush_index_changed)
        grid.addWidget(QLabel("Brush"), 2, 0)
        grid.addWidget(self.brush_slider, 2, 1)
        grid.addWidget(self.brush_label, 2, 2)
        grid.addWidget(self._button("undo"), 3, 0)
        grid.addWidget(self._button("redo"), 3, 1)
        grid.addWidget(self._button("clear_mask"), 3, 2)
        self._actions["brush_smaller"].triggered.connect(lambda: self._step_brush(-1))
        self._actions["brush_larger"].triggered.connect(lambda: self._step_brush(+1))
        self._brush_index_changed(self.brush_slider.value())
        return box

    @property
    def brush_radius(self) -> int:
        return BRUSH_SIZES_PX[self.brush_slider.value()]

    def _step_brush(self, step: int) -> None:
        self.brush_slider.setValue(self.brush_slider.value() + step)

    def _brush_index_changed(self, index: int) -> None:
        radius = BRUSH_SIZES_PX[index]
        self.brush_label.setText(f"{2 * radius} px")
        self.sigBrushRadiusChanged.emit(radius)

    # -- overlays ---------------------------------------------------------------------------
    def _overlay_box(self) -> QGroupBox:
        box = QGroupBox("Overlays")
        column = QVBoxLayout(box)
        self.ai_overlay = OverlayControl(self._actions["toggle_ai"], 0.9)
        self.edit_overlay = OverlayControl(self._actions["toggle_edit"], 0.45)
        self.heatmap_overlay = OverlayControl(self._actions["toggle_heatmap"], 0.45)
        column.addWidget(self.ai_overlay)
        contour = QToolButton()
        contour.setDefaultAction(self._actions["toggle_ai_contour"])
        column.addWidget(contour)
        column.addWidget(self.edit_overlay)
        column.addWidget(self.heatmap_overlay)
        return box

    def _window_box(self) -> QGroupBox:
        box = QGroupBox("Window / level")
        grid = QGridLayout(box)
        for index, name in enumerate(
            ("window_default", "window_full", "window_narrow", "window_wide", "invert", "fit")
        ):
            grid.addWidget(self._button(name), index // 2, index % 2)
        return box

    def _button(self, action_name: str) -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(self._actions[action_name])
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        return button
