"""The status bar: messages, pixel readout, window/level readout, and background progress + cancel."""

from __future__ import annotations

import math

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget


class StatusBar(QStatusBar):
    sigCancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pixel_label = QLabel()
        self.pixel_label.setMinimumWidth(230)
        self.window_label = QLabel()
        self.window_label.setMinimumWidth(150)
        self.task_label = QLabel()
        self.ai_label = QLabel()
        self.ai_label.setObjectName("ai-state")
        self.progress = QProgressBar()
        self.progress.setFixedWidth(220)
        self.progress.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop background work (Esc)")
        self.cancel_button.clicked.connect(self.sigCancelRequested)
        for widget in (self.pixel_label, self.window_label, self.ai_label, self.task_label, self.progress,
                       self.cancel_button):
            self.addPermanentWidget(widget)
        self.set_idle()

    def show_pixel(self, row: int, col: int, value: float) -> None:
        if math.isnan(value):
            self.pixel_label.setText("")
        else:
            self.pixel_label.setText(f"x {col}  y {row}   value {value:g}")

    def show_window(self, center: float, width: float) -> None:
        self.window_label.setText(f"W {width:.0f}  L {center:.0f}")

    def show_ai_state(self, text: str, problem: str | None = None) -> None:
        """A lasting note on the AI (loading, ready, unavailable); `problem` turns it red with the reason."""
        self.ai_label.setText(text)
        self.ai_label.setToolTip(problem or "")
        self.ai_label.setStyleSheet("color: #ff7b72; font-weight: bold;" if problem else "color: #8b949e;")

    def show_progress(self, done: int, total: int, description: str) -> None:
        self.task_label.setText(description)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        if total <= 0:
            self.progress.setRange(0, 0)  # busy indicator until the size is known
            return
        # QProgressBar.setValue repaints at once, not at the next paint event: a folder of 10,000 files
        # reporting each file would spend seconds in repaints. With updates off, setValue only records
        # the value; turning them back on asks for one paint (Qt calls update()), merged with the others.
        self.progress.setUpdatesEnabled(False)
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setUpdatesEnabled(True)

    def set_idle(self, message: str = "") -> None:
        self.task_label.setText(message)
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
