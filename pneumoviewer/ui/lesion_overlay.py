"""Each lesion's outline, bounding box and label on the film, and the small list of lesions beside it.

Outlines and boxes are drawn with cosmetic pens (the same line width at any zoom) and the labels in
screen pixels, beside the box and never over it (`io.overlay.place_label`, the rule the exported
pictures follow), so they stay readable from a whole-film view to a close-up. The lesions come from
`review.lesions` (numbers, areas, extents and sides shared with the list and the reports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QAbstractItemView, QGroupBox, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout

from pneumoviewer.io.overlay import place_label
from pneumoviewer.ui.pyqtgraph_lean import pg
from pneumoviewer.ui.theme import AI_MASK_COLOUR, EDIT_MASK_COLOUR

if TYPE_CHECKING:
    from pneumoviewer.review.lesions import Lesion

_BOX_COLOUR = QColor(255, 230, 0)
_LABEL_BACKGROUND = QColor(0, 0, 0, 170)
_LIST_COLUMNS = ("Lesion", "Area", "Extent", "Side")


def _source_colour(lesion: Lesion) -> QColor:
    from pneumoviewer.review.lesions import LesionSource

    return QColor(*(AI_MASK_COLOUR if lesion.source is LesionSource.AI else EDIT_MASK_COLOUR))


class LesionOverlay(pg.GraphicsObject):
    """One item over the film: all lesions of the case on screen, the hovered one drawn thicker."""

    def __init__(self) -> None:
        super().__init__()
        self.lesions: list[Lesion] = []
        self.labels: list[str] = []
        self._outlines: list[QPainterPath] = []
        self._highlighted: Lesion | None = None
        self._font = QFont()
        self._font.setPointSizeF(9.5)
        self._font.setBold(True)
        self.label_rects: list[QRectF] = []  # where the last paint put each label, in screen pixels (tests)

    def set_lesions(self, lesions: list[Lesion], labels: list[str]) -> None:
        self.prepareGeometryChange()
        self.lesions, self.labels = lesions, labels
        self._outlines = [self._outline_path(lesion) for lesion in lesions]
        if self._highlighted not in lesions:
            self._highlighted = None
        self.update()

    def set_highlighted(self, lesion: Lesion | None) -> None:
        if lesion is not self._highlighted:
            self._highlighted = lesion
            self.update()

    @staticmethod
    def _outline_path(lesion: Lesion) -> QPainterPath:
        path = QPainterPath()
        for contour in lesion.outline():  # closed: the last point is the first
            path.addPath(pg.arrayToQPath(contour[:, 1], contour[:, 0]))  # vectorised: 4x faster than lineTo
        return path

    def _visible_rect(self) -> QRectF | None:
        """The part of the film on screen, in image coordinates (the item sits untransformed in the view)."""
        view_box = self.getViewBox()
        return None if view_box is None else view_box.viewRect()

    def boundingRect(self) -> QRectF:
        # Labels sit beside boxes in screen pixels, anywhere in the visible view: claim the view.
        visible = self._visible_rect()
        return QRectF() if visible is None else visible

    def viewRangeChanged(self) -> None:
        self.prepareGeometryChange()

    def paint(self, painter: QPainter, *args) -> None:
        self.label_rects = []
        if not self.lesions:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        to_screen = painter.transform()
        for lesion, outline in zip(self.lesions, self._outlines, strict=True):
            width = 3.0 if lesion is self._highlighted else 1.5
            outline_pen = QPen(_source_colour(lesion), width)
            outline_pen.setCosmetic(True)
            painter.setPen(outline_pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(outline)
            box_pen = QPen(_BOX_COLOUR, width, Qt.PenStyle.DashLine)
            box_pen.setCosmetic(True)
            painter.setPen(box_pen)
            painter.drawRect(_box_rect(lesion))
        visible = self._visible_rect()
        if visible is None:
            return
        screen_bounds = to_screen.mapRect(visible)
        painter.resetTransform()  # from here on: screen pixels, whatever the zoom
        painter.setFont(self._font)
        metrics = QFontMetricsF(self._font)
        boxes = [to_screen.mapRect(_box_rect(lesion)).adjusted(-2, -2, 2, 2) for lesion in self.lesions]
        taken = [_as_tuple(box) for box in boxes]
        for lesion, text, box in zip(self.lesions, self.labels, boxes, strict=True):
            size = metrics.size(0, text)
            padded = (size.width() + 8, size.height() + 4)
            own = _as_tuple(box)
            spot = place_label(own, padded, _as_tuple(screen_bounds), [rect for rect in taken if rect != own])
            taken.append(spot)
            rect = QRectF(spot[0], spot[1], spot[2] - spot[0], spot[3] - spot[1])
            self.label_rects.append(rect)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(_LABEL_BACKGROUND))
            painter.drawRoundedRect(rect, 3, 3)
            painter.setPen(QPen(_BOX_COLOUR if lesion is not self._highlighted else QColor("white")))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.setTransform(to_screen)


def _box_rect(lesion: Lesion) -> QRectF:
    row0, row1, col0, col1 = lesion.box
    return QRectF(col0, row0, col1 - col0, row1 - row0)


def _as_tuple(rect: QRectF) -> tuple[float, float, float, float]:
    return (rect.left(), rect.top(), rect.right(), rect.bottom())


class LesionList(QGroupBox):
    """The lesions of the case on screen: area, extent and side; the row of the hovered lesion is selected."""

    def __init__(self) -> None:
        super().__init__("Lesions")
        self.table = QTableWidget(0, len(_LIST_COLUMNS))
        self.table.setObjectName("lesion-list")
        self.table.setHorizontalHeaderLabels(list(_LIST_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.table.setMaximumHeight(150)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table)
        self.lesions: list[Lesion] = []

    def set_lesions(self, lesions: list[Lesion]) -> None:
        self.lesions = lesions
        self.table.clearSelection()
        self.table.setRowCount(len(lesions))
        for row, lesion in enumerate(lesions):
            values = (lesion.name, lesion.area_text(), lesion.extent_text(), lesion.side.value)
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column == 0:
                    item.setForeground(_source_colour(lesion))
                self.table.setItem(row, column, item)
        self.setTitle(f"Lesions ({len(lesions)})" if lesions else "Lesions (none)")

    def highlight(self, lesion: Lesion | None) -> None:
        if lesion is None or lesion not in self.lesions:
            self.table.clearSelection()
            return
        row = self.lesions.index(lesion)
        self.table.selectRow(row)
        self.table.scrollToItem(self.table.item(row, 0))  # type: ignore[arg-type]  # the row was just filled

    @property
    def highlighted_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else None
