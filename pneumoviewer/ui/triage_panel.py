"""The triage-flag box: where on the model's out-of-fold operating curve the worklist's red flag is set.

A slider over the curve's points (left: fewer flags, more specific; right: more flags, more
sensitive), labelled with each point's sensitivity and specificity, and presets for the usual
choices. The box only emits the reader's pick, as a sensitivity (`sigSensitivityChosen`; None = the
model card's triage point); the controller moves the flags and tells the box where they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout

if TYPE_CHECKING:
    from pneumoviewer.model.operating_points import OperatingPoint, OperatingPoints

PRESET_SENSITIVITIES = (0.80, 0.90, 0.95)


class TriagePanel(QGroupBox):
    sigSensitivityChosen = Signal(object)  # float sensitivity, or None for the card's triage point

    def __init__(self) -> None:
        super().__init__("Triage flag (red in the worklist)")
        self.setObjectName("triage-panel")
        self._curve: tuple[OperatingPoint, ...] = ()  # highest threshold first: the slider's left end
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("triage-slider")
        self.slider.setToolTip("Left: fewer cases flagged, fewer false alarms. Right: more pneumothoraces flagged.")
        self.slider.setEnabled(False)
        self.label = QLabel("no model loaded yet")
        self.label.setObjectName("triage-point")
        self.label.setWordWrap(True)
        self.presets: dict[float | None, QPushButton] = {}
        presets = QHBoxLayout()
        for sensitivity in (*PRESET_SENSITIVITIES, None):
            button = QPushButton("model default" if sensitivity is None else f"sens. {sensitivity:.2f}")
            button.setEnabled(False)
            button.clicked.connect(lambda _=False, s=sensitivity: self.sigSensitivityChosen.emit(s))
            presets.addWidget(button)
            self.presets[sensitivity] = button
        column = QVBoxLayout(self)
        along = QHBoxLayout()
        along.addWidget(QLabel("fewer flags"))
        along.addWidget(self.slider, 1)
        along.addWidget(QLabel("more found"))
        column.addLayout(along)
        column.addWidget(self.label)
        column.addLayout(presets)
        self.slider.valueChanged.connect(self._slider_moved)

    def show_point(self, points: OperatingPoints | None, chosen: OperatingPoint | None) -> None:
        """Draw the model's curve and the point flagged at (from the controller's `sigTriagePoint`)."""
        self._curve = () if points is None else points.curve
        usable = len(self._curve) > 1
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self._curve) - 1))
        if chosen is not None and self._curve:  # the card's own point carries cross-fitted figures: match by threshold
            self.slider.setValue(min(range(len(self._curve)),
                                     key=lambda index: abs(self._curve[index].threshold - chosen.threshold)))
        self.slider.blockSignals(False)
        self.slider.setEnabled(usable)
        for button in self.presets.values():
            button.setEnabled(usable)
        if points is None or chosen is None:
            self.label.setText("no model loaded yet")
        elif not points.measured:
            self.label.setText(f"this model's card has no triage curve: flagged at its challenge threshold "
                               f"(score ≥ {chosen.threshold:.3f})")
        else:
            self.label.setText(f"flagged when the score ≥ {chosen.threshold:.3f}: {chosen.label()} "
                               "(measured on films the model never trained on)")

    def _slider_moved(self, index: int) -> None:
        if 0 <= index < len(self._curve):
            self.sigSensitivityChosen.emit(self._curve[index].sensitivity)
