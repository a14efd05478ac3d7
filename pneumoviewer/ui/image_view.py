"""The radiograph canvas: one pyqtgraph ViewBox holding small composable items.

Layers, bottom to top: the grey image (window/level via `setLevels`, invert via the LUT), the
Grad-CAM heatmap (colormap + opacity), the AI mask (fill or contour) and the editable mask. The
editable mask is an RGBA buffer that QImage shares without copying: after an edit only the changed
rectangle of that buffer is rewritten and only that rectangle of the scene is repainted.

The canvas draws and reports gestures (stroke points, fill clicks, cursor position); it never
changes mask data itself.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem

from pneumoviewer.ui.pyqtgraph_lean import pg
from pneumoviewer.ui.theme import AI_MASK_COLOUR, EDIT_MASK_COLOUR
from pneumoviewer.ui.tools import Mode

DirtyRect = tuple[int, int, int, int]  # row0, row1, col0, col1 (end-exclusive)
_GREY_LUT = np.arange(256, dtype=np.uint8)
_CONTOUR_WIDTH_PX = 3


class MaskLayer(pg.ImageItem):
    """A boolean mask drawn in one colour through an RGBA buffer shared with its QImage."""

    def __init__(self, colour: tuple[int, int, int]) -> None:
        super().__init__(axisOrder="row-major")
        self._rgba_on = np.array([*colour, 255], dtype=np.uint8)
        self._buffer: np.ndarray | None = None

    def set_mask(self, mask: np.ndarray | None) -> None:
        if mask is None:
            self.clear()
            return
        if self._buffer is None or self._buffer.shape[:2] != mask.shape:
            self._buffer = np.empty((*mask.shape, 4), dtype=np.uint8)  # reused: a fresh 4 MB per case page-faults
        # One pass writing each RGBA pixel as a 32-bit word (the colour or 0): ~40x faster than clearing
        # the buffer and assigning through the boolean mask, which cost the UI thread 7-40 ms on every
        # case shown and every AI result (event-loop stalls in benchmarks/bench_ui.py).
        np.multiply(mask, self._rgba_on.view(np.uint32)[0], out=self._buffer.view(np.uint32)[..., 0])
        self.setImage(self._buffer, autoLevels=False, levels=None)

    def update_region(self, mask: np.ndarray, rect: DirtyRect) -> None:
        """Rewrite only `rect` of the buffer from `mask` and repaint only that part of the scene."""
        if self.image is None or self._buffer is None or self._buffer.shape[:2] != mask.shape:
            self.set_mask(mask)
            return
        row0, row1, col0, col1 = rect
        if row1 <= row0 or col1 <= col0:
            return
        region = mask[row0:row1, col0:col1]
        self._buffer[row0:row1, col0:col1] = region[..., None] * self._rgba_on
        self.update(QRectF(col0, row0, col1 - col0, row1 - row0))


def mask_outline(mask: np.ndarray, width: int = _CONTOUR_WIDTH_PX) -> np.ndarray:
    """Pixels of `mask` within `width` of its border (a contour that stays visible when zoomed out)."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:, :] &= inner[:-1, :]
        shrunk[:-1, :] &= inner[1:, :]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner


def heatmap_lut() -> np.ndarray:
    """Turbo colours whose alpha rises with the value, so cold regions leave the film visible."""
    lut = pg.colormap.get("turbo").getLookupTable(0.0, 1.0, 256, alpha=True)
    lut[:, 3] = np.clip(np.linspace(0, 1, 256) * 2.0, 0, 1) * 255
    return lut.astype(np.uint8)


class CanvasViewBox(pg.ViewBox):
    """Routes left-button gestures by mode; wheel zooms and middle-drag pans in every mode."""

    sigStrokeStarted = Signal(float, float)  # row, col
    sigStrokeMoved = Signal(float, float)
    sigStrokeFinished = Signal()
    sigFillRequested = Signal(int, int)
    sigWindowDragged = Signal(float, float)  # d(center), d(width) in screen pixels

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.mode = Mode.PAN

    def _row_col(self, scene_pos: QPointF) -> tuple[float, float]:
        point = self.mapSceneToView(scene_pos)
        return point.y(), point.x()

    def mouseDragEvent(self, ev, axis=None) -> None:
        button = ev.button()
        painting = self.mode in (Mode.BRUSH, Mode.ERASER)
        if button == Qt.MouseButton.LeftButton and painting:
            ev.accept()
            if ev.isStart():  # the drag is recognised a few pixels away: paint from the press point
                pressed = self._row_col(ev.buttonDownScenePos())
                self.sigStrokeStarted.emit(*pressed)
                self.sigStrokeMoved.emit(*pressed)
            self.sigStrokeMoved.emit(*self._row_col(ev.scenePos()))
            if ev.isFinish():
                self.sigStrokeFinished.emit()
            return
        windowing = button == Qt.MouseButton.RightButton or (
            button == Qt.MouseButton.LeftButton and self.mode == Mode.WINDOW
        )
        if windowing:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.sigWindowDragged.emit(-delta.y(), delta.x())
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.accept()  # no context menu on the film
            return
        row, col = self._row_col(ev.scenePos())
        if self.mode in (Mode.BRUSH, Mode.ERASER):
            ev.accept()
            self.sigStrokeStarted.emit(row, col)
            self.sigStrokeMoved.emit(row, col)
            self.sigStrokeFinished.emit()
        elif self.mode == Mode.FILL:
            ev.accept()
            self.sigFillRequested.emit(int(np.floor(row)), int(np.floor(col)))
        else:
            super().mouseClickEvent(ev)


class ImageCanvas(pg.GraphicsLayoutWidget):
    sigCursorMoved = Signal(int, int, float)  # row, col, raw value (NaN outside the image)
    sigWindowChanged = Signal(float, float)  # center, width in raw units

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("#0b0c0f")
        self.view = CanvasViewBox()
        self.addItem(self.view, row=0, col=0)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.heatmap_item = pg.ImageItem(axisOrder="row-major")
        self.heatmap_item.setLookupTable(heatmap_lut())
        self.ai_item = MaskLayer(AI_MASK_COLOUR)
        self.edit_item = MaskLayer(EDIT_MASK_COLOUR)
        for z, item in enumerate((self.image_item, self.heatmap_item, self.ai_item, self.edit_item)):
            item.setZValue(z)
            self.view.addItem(item)
        self.colour_bar: pg.ColorBarItem | None = None  # made when a heatmap is first shown (see _show_colour_bar)
        self.brush_cursor = QGraphicsEllipseItem()
        pen = QPen(QColor(255, 255, 255, 200))
        pen.setCosmetic(True)
        self.brush_cursor.setPen(pen)
        self.brush_cursor.setZValue(10)
        self.brush_cursor.setVisible(False)
        self.view.addItem(self.brush_cursor, ignoreBounds=True)
        self.brush_radius = 16
        self._raw: np.ndarray | None = None
        self._default_window = (0.5, 1.0)
        self._window = (0.5, 1.0)
        self._dicom_invert = False
        self._user_invert = False
        self._ai_mask: np.ndarray | None = None
        self._ai_contour = True
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.view.sigWindowDragged.connect(self._window_dragged)

    # -- image and window/level -----------------------------------------------------------------
    def show_image(self, raw: np.ndarray, window: tuple[float, float], dicom_invert: bool) -> None:
        self._raw = raw
        self._default_window = window
        self._dicom_invert = dicom_invert
        self.image_item.setImage(raw, autoLevels=False)
        self._apply_lut()
        self.set_window(*window)
        self.set_ai_mask(None)
        self.set_heatmap(None)
        self.edit_item.set_mask(None)
        self.fit()

    def clear_image(self) -> None:
        self._raw = None
        for item in (self.image_item, self.heatmap_item):
            item.clear()
        self.set_ai_mask(None)
        self.edit_item.set_mask(None)

    @property
    def window(self) -> tuple[float, float]:
        return self._window

    def set_window(self, center: float, width: float) -> None:
        width = max(float(width), 1e-3)
        self._window = (float(center), width)
        self.image_item.setLevels((center - width / 2, center + width / 2))
        self.sigWindowChanged.emit(center, width)

    def window_preset(self, name: str) -> None:
        """Presets relative to this image: DICOM default, full range, narrower, wider."""
        if self._raw is None:
            return
        center, width = self._default_window
        if name == "full":
            low, high = float(self._raw.min()), float(self._raw.max())
            center, width = (low + high) / 2, high - low
        elif name == "narrow":
            width /= 2
        elif name == "wide":
            width *= 2
        self.set_window(center, width)

    def set_user_invert(self, inverted: bool) -> None:
        self._user_invert = inverted
        self._apply_lut()

    def _apply_lut(self) -> None:
        inverted = self._dicom_invert != self._user_invert
        self.image_item.setLookupTable(_GREY_LUT[::-1].copy() if inverted else _GREY_LUT)

    def _window_dragged(self, d_center: float, d_width: float) -> None:
        if self._raw is None:
            return
        center, width = self._window
        span = max(self._default_window[1], 1.0)
        step = span / 400  # a full-width drag across a typical screen sweeps about twice the default
        self.set_window(center + d_center * step, max(width + d_width * step, step))

    def fit(self) -> None:
        self.view.autoRange(padding=0.01)

    # -- overlays -------------------------------------------------------------------------------
    def set_ai_mask(self, mask: np.ndarray | None) -> None:
        self._ai_mask = mask
        self._redraw_ai()

    def set_ai_contour(self, contour: bool) -> None:
        self._ai_contour = contour
        self._redraw_ai()

    def _redraw_ai(self) -> None:
        mask = self._ai_mask
        if mask is not None and self._ai_contour:
            mask = mask_outline(mask)
        self.ai_item.set_mask(mask)

    def set_edit_mask(self, mask: np.ndarray | None) -> None:
        self.edit_item.set_mask(mask)

    def update_edit_region(self, mask: np.ndarray, rect: DirtyRect) -> None:
        self.edit_item.update_region(mask, rect)

    def set_heatmap(self, heatmap: np.ndarray | None) -> None:
        if heatmap is None:
            self.heatmap_item.clear()
        else:
            self.heatmap_item.setImage(heatmap, autoLevels=False, levels=(0.0, 1.0))
        self._show_colour_bar(heatmap is not None and self.heatmap_item.isVisible())

    def set_heatmap_visible(self, visible: bool) -> None:
        self.heatmap_item.setVisible(visible)
        self._show_colour_bar(visible and self.heatmap_item.image is not None)

    def _show_colour_bar(self, visible: bool) -> None:
        if self.colour_bar is None:
            if not visible:
                return
            # Made on first use: it is a whole PlotItem (axes, menus), a tenth of the window's construction.
            self.colour_bar = pg.ColorBarItem(
                values=(0, 1), colorMap=pg.colormap.get("turbo"), interactive=False, width=12, label="Grad-CAM",
            )
            self.colour_bar.setMaximumHeight(360)
            self.colour_bar.setToolTip("Grad-CAM: where the network's evidence for its mask lies (0 = none, 1 = most)")
            self.addItem(self.colour_bar, row=0, col=1)
        self.colour_bar.setVisible(visible)

    # -- cursor -------------------------------------------------------------------------------
    def set_mode(self, mode: Mode) -> None:
        self.view.mode = mode
        self.brush_cursor.setVisible(False)
        cursors = {Mode.PAN: Qt.CursorShape.OpenHandCursor, Mode.WINDOW: Qt.CursorShape.SizeAllCursor,
                   Mode.FILL: Qt.CursorShape.PointingHandCursor}
        self.setCursor(cursors.get(mode, Qt.CursorShape.CrossCursor))

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        if self._raw is None:
            return
        row, col = self.view._row_col(scene_pos)
        if self.view.mode in (Mode.BRUSH, Mode.ERASER):
            radius = self.brush_radius
            self.brush_cursor.setRect(QRectF(col - radius, row - radius, 2 * radius, 2 * radius))
            self.brush_cursor.setVisible(True)
        r, c = int(np.floor(row)), int(np.floor(col))
        inside = 0 <= r < self._raw.shape[0] and 0 <= c < self._raw.shape[1]
        self.sigCursorMoved.emit(r, c, float(self._raw[r, c]) if inside else float("nan"))
