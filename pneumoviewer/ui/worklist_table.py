"""The worklist table: shows the controller's worklist rows, sortable by a header click."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QPointF, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QStaticText
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from pneumoviewer.ui.worklist import (
    COLUMNS,
    RIGHT_ALIGNED_COLUMNS,
    SCORE_COLUMN,
    WorklistModel,
    cell_colour,
    cell_text,
)

TEXT_MARGIN = 3  # px between a cell's edge and its text, as the style leaves
CACHED_TEXTS = 20_000  # laid-out strings kept: a 10,000-study folder's case numbers and the few other values


class WorklistCellDelegate(QStyledItemDelegate):
    """Paints a worklist cell from its row: the selection, then its text from a cache of laid-out
    strings (QStaticText). Qt's own delegate asked the model for seven roles per cell and laid each
    text out twice through the style sheet's style: half of a repaint of the list's ~280 cells (a repaint
    of 40 rows: 20-30 ms against 11 ms; docs/benchmarks.md). Tooltips still come from the model."""

    def __init__(self, model: WorklistModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._texts: dict[str, QStaticText] = {}

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        row = self._model.shown_row(index.row())
        if row is None:
            return
        column = index.column()
        rect, palette = option.rect, option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(rect, palette.highlight())
            colour = palette.highlightedText().color()
        else:
            colour = cell_colour(row, column) or palette.text().color()
        available = rect.width() - 2 * TEXT_MARGIN
        text = self._laid_out(cell_text(row, column))
        if text.size().width() > available:  # a column made narrower than its text: elided, as Qt's would
            text = self._laid_out(option.fontMetrics.elidedText(
                text.text(), Qt.TextElideMode.ElideRight, available))
        size = text.size()
        right_aligned = column in RIGHT_ALIGNED_COLUMNS
        left = rect.right() - TEXT_MARGIN - size.width() if right_aligned else rect.left() + TEXT_MARGIN
        painter.setPen(colour)
        painter.drawStaticText(QPointF(left, rect.top() + (rect.height() - size.height()) // 2), text)

    def _laid_out(self, text: str) -> QStaticText:
        laid_out = self._texts.get(text)
        if laid_out is None:
            if len(self._texts) >= CACHED_TEXTS:
                self._texts.clear()
            laid_out = self._texts[text] = QStaticText(text)
            laid_out.setTextFormat(Qt.TextFormat.PlainText)
        return laid_out


class WorklistTable(QTableView):
    def __init__(self, model: WorklistModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setItemDelegate(WorklistCellDelegate(model, self))
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSortingEnabled(True)
        self.sortByColumn(SCORE_COLUMN, Qt.SortOrder.DescendingOrder)
        self.setAlternatingRowColors(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(24)
        # One height for every row: nothing is measured per row, whatever the list's length.
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.horizontalHeader()
        # Fixed widths from the font: ResizeToContents would ask every row for its size on each change.
        metrics = self.fontMetrics()
        # "Case 00000": from 10,000 studies on the case numbers have five digits.
        samples = ("Case 00000", "View", "Age", "Sex", "0.00", "100.0", "unreviewed")
        self._column_widths = [
            # Header text is bold and carries the sort arrow: whichever is wider sets the column.
            max(metrics.horizontalAdvance(sample) + 14, round(metrics.horizontalAdvance(title) * 1.1) + 18)
            for sample, title in zip(samples, COLUMNS, strict=True)
        ]
        for column, width in enumerate(self._column_widths):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)
        header.setStretchLastSection(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)

    def preferred_width(self) -> int:
        """Width that shows every column without scrolling sideways (room kept for the vertical scroll bar)."""
        return sum(self._column_widths) + 2 * self.frameWidth() + self.verticalScrollBar().sizeHint().width()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Qt's own paint, entered from Python so that it runs holding the GIL. Painting the list calls
        into Python twice per cell (the model's `index`, the delegate's `paint`): ~500 calls per repaint.
        Entered from C++, each of them waited for the GIL while a worker ran Python (the end of a folder's
        indexing): the end of an opening stalled 145-159 ms against 23-30 ms when entered from here
        (benchmarks/bench_opening_end.py, Qt's delegate then)."""
        super().paintEvent(event)
