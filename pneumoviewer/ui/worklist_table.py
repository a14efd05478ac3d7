"""The worklist table: shows the controller's worklist rows, sortable by a header click."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from pneumoviewer.ui.worklist import COLUMNS, SCORE_COLUMN, WorklistModel


class WorklistTable(QTableView):
    def __init__(self, model: WorklistModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
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
