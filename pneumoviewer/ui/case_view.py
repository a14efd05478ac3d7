"""The case on screen: the canvas plus the glue that turns gestures into edits of that case.

Every pixel change goes through the case's `MaskEditor` (review/); the editor reports dirty
rectangles and this view redraws exactly those. Status rules live in `Case`, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QStackedLayout, QWidget

from pneumoviewer.ui.image_view import ImageCanvas
from pneumoviewer.ui.lesion_overlay import LesionOverlay
from pneumoviewer.ui.tools import Mode

if TYPE_CHECKING:  # the review stack is imported by the workers, after the window is up (start-up time)
    from pneumoviewer.io.dicom import DicomImage
    from pneumoviewer.review.case import Case, CaseChange
    from pneumoviewer.review.lesions import Lesion
    from pneumoviewer.review.mask_editor import DirtyRect, MaskEditor


class CaseView(QWidget):
    START_HINT = (
        "Open a folder of chest DICOMs:\nFile → Open folder (Ctrl+O), or drop the folder here.\n\n"
        "File → Open demo studies shows six SIIM-ACR examples.\nF1 lists the keyboard shortcuts."
    )

    # The editor calls back on the GUI thread (this view makes the edits); case changes from any
    # thread reach `case_changed` through the review controller's signal.
    sigPixelsChanged = Signal(object)  # DirtyRect
    sigLesionsChanged = Signal(list)  # the lesions of the case on screen (the AI's, then the reader's)
    sigLesionHovered = Signal(object)  # the Lesion under the cursor, or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = ImageCanvas()
        self.placeholder = QLabel(self.START_HINT)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setStyleSheet("color: #8b949e; font-size: 12pt; background: #0b0c0f;")
        self.stack = QStackedLayout(self)
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.canvas)
        self.case: Case | None = None
        self.image_id_on_canvas: str | None = None
        self.mode = Mode.PAN
        self.brush_radius = 16
        self.read_only = False  # True while an import writes masks from a worker thread
        view = self.canvas.view
        view.sigStrokeStarted.connect(self._stroke_started)
        view.sigStrokeMoved.connect(self._stroke_moved)
        view.sigStrokeFinished.connect(self._stroke_finished)
        view.sigFillRequested.connect(self._fill)
        self.sigPixelsChanged.connect(self._pixels_changed)
        self._forward_pixels = self.sigPixelsChanged.emit  # one object, so disconnect finds it
        self._listened_editor: MaskEditor | None = None  # the editor whose dirty rects we redraw
        self.lesion_overlay = LesionOverlay()
        self.lesion_overlay.setZValue(8)  # over the masks and heatmap, under the brush cursor
        view.addItem(self.lesion_overlay, ignoreBounds=True)
        self.lesions: list[Lesion] = []
        self.hovered_lesion: Lesion | None = None
        # How an AI lesion's label names the AI's confidence (the window asks the model card).
        self.ai_note: Callable[[float | None], str | None] = lambda score: None
        self.canvas.sigCursorMoved.connect(self._cursor_moved)

    # -- what is shown --------------------------------------------------------------------------
    def show_case(self, case: Case | None) -> None:
        """Make `case` the one being edited (its pixels arrive separately via `show_pixels`)."""
        if self._listened_editor is not None:
            self._listened_editor.pixels_changed.disconnect(self._forward_pixels)
            self._listened_editor = None
        self.case = case
        self.image_id_on_canvas = None
        # Never leave the previous image up beside this case's details while its pixels load.
        self.placeholder.setText(self.START_HINT if case is None else f"Loading {case.display_id}…")
        self.stack.setCurrentWidget(self.placeholder)
        self._show_lesions([])
        if case is None:
            self.canvas.clear_image()

    def show_image(self, image_id: str, image: DicomImage) -> None:
        self.show_pixels(image_id, image.raw, image.window, image.invert)

    def show_pixels(self, image_id: str, raw: np.ndarray, window: tuple[float, float], invert: bool) -> None:
        if self.case is None or self.case.image_id != image_id:
            return
        self.stack.setCurrentWidget(self.canvas)
        self.canvas.show_image(raw, window, invert)
        self.image_id_on_canvas = image_id
        self.canvas.set_edit_mask(self.case.mask)  # None until something is drawn: no 1 MB per case looked at
        self.canvas.set_ai_mask(self.case.ai_mask)
        self.refresh_lesions()

    def show_problem(self, text: str) -> None:
        """Why the current case cannot be shown, in place of the image (no dialog to click away)."""
        self.image_id_on_canvas = None
        self.show_note(f"This image cannot be shown.\n\n{text}")

    def show_note(self, text: str) -> None:
        """A line of text where the film goes (while a folder is read, or why there is no image)."""
        self.placeholder.setText(text)
        self.stack.setCurrentWidget(self.placeholder)

    def show_heatmap(self, image_id: str, heatmap: np.ndarray | None) -> None:
        if self.image_id_on_canvas == image_id:
            self.canvas.set_heatmap(heatmap)

    # -- editing --------------------------------------------------------------------------------
    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        self.canvas.set_mode(mode)

    def set_brush_radius(self, radius: int) -> None:
        self.brush_radius = radius
        self.canvas.brush_radius = radius

    def _on_canvas(self) -> bool:
        return self.case is not None and self.image_id_on_canvas == self.case.image_id

    def _editable(self) -> bool:
        return not self.read_only and self._on_canvas()

    def _editor(self) -> MaskEditor:
        """The case's editor, created on the first edit, with its dirty rects redrawn from then on."""
        assert self.case is not None  # callers check _editable() first
        editor = self.case.editor
        if editor is not self._listened_editor:
            editor.pixels_changed.connect(self._forward_pixels)
            self._listened_editor = editor
        return editor

    def _stroke_started(self, row: float, col: float) -> None:
        if self._editable():
            self._editor().begin_stroke()

    def _stroke_moved(self, row: float, col: float) -> None:
        if self._editable() and self._editor().in_stroke:
            # pyqtgraph pixel i spans [i, i + 1); the editor puts pixel centres on integers.
            self._editor().paint(row - 0.5, col - 0.5, self.brush_radius, value=self.mode is Mode.BRUSH)

    def _stroke_finished(self) -> None:
        if self._editable():
            self._editor().end_stroke()

    def _fill(self, row: int, col: int) -> None:
        if self._editable():
            self._editor().fill(row, col, True)

    def undo(self) -> None:
        if self._editable():
            self._editor().undo()

    def redo(self) -> None:
        if self._editable():
            self._editor().redo()

    def start_from_ai(self) -> None:
        if self._editable() and self.case is not None:
            self._editor()
            self.case.start_from_ai()

    def clear_mask(self) -> None:
        if self._editable():
            self._editor().clear()

    def _pixels_changed(self, rect: DirtyRect) -> None:
        if self._on_canvas() and self._listened_editor is not None:
            self.canvas.update_edit_region(self._listened_editor.mask, rect)

    def case_changed(self, case: Case, change: CaseChange) -> None:
        """A case changed (an edit, the AI, an import): redraw what changed if it is the one on screen."""
        from pneumoviewer.review.case import CaseChange  # imported by then: a session exists

        if case is not self.case or not self._on_canvas():
            return
        if change is CaseChange.AI:
            self.canvas.set_ai_mask(case.ai_mask)
        elif change is CaseChange.MASK and self._listened_editor is None:
            # Changed without our editor listening (an import, or Accept adopting the AI mask).
            self.canvas.set_edit_mask(case.mask)
        if change in (CaseChange.AI, CaseChange.MASK):
            self.refresh_lesions()

    # -- lesions ----------------------------------------------------------------------------------
    def refresh_lesions(self) -> None:
        """Measure the lesions of the case on screen again (once per committed edit or AI result)."""
        from pneumoviewer.review.lesions import case_lesions

        if self.case is None or not self._on_canvas():
            self._show_lesions([])
            return
        ai, reader = case_lesions(self.case)
        self._show_lesions(ai + reader)

    def _show_lesions(self, lesions: list[Lesion]) -> None:
        self.lesions = lesions
        note = self.ai_note(self.case.ai_score) if self.case is not None else None
        self.lesion_overlay.set_lesions(lesions, [lesion.label(note) for lesion in lesions])
        self.hovered_lesion = None
        self.sigLesionsChanged.emit(lesions)

    def set_lesions_visible(self, visible: bool) -> None:
        self.lesion_overlay.setVisible(visible)

    def _cursor_moved(self, row: int, col: int, value: float) -> None:
        from pneumoviewer.review.lesions import lesion_at

        hovered = lesion_at(self.lesions, row, col) if self.lesions else None
        if hovered is not self.hovered_lesion:
            self.hovered_lesion = hovered
            self.lesion_overlay.set_highlighted(hovered)
            self.sigLesionHovered.emit(hovered)
