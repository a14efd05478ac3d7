"""The triage worklist's rows: one per image, sorted by AI score, filterable by review status.

Rows are plain snapshots (`WorklistRow`) that the review controller refreshes from the session; the
table (worklist_table.py) only shows them. No widgets here: the controller owns these models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
)
from PySide6.QtGui import QColor

from pneumoviewer.ui.theme import STATUS_COLOURS

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
IMAGE_ID_ROLE = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class WorklistRow:
    image_id: str
    display_id: str  # anonymised ("Case 0007"): what the table shows
    path: Path
    view: str = ""
    age: str = ""
    sex: str = ""
    score: float | None = None  # AI presence score in [0, 1]; None until predicted
    area_cm2: float | None = None  # lesion area of the current mask; None without spacing/mask
    status: str = "unreviewed"  # ReviewStatus value
    ai_positive: bool | None = None  # the AI's call: a lesion mask (True) or none (False)
    error: str | None = None  # why the AI could not run on this image
    flagged: bool | None = None  # the triage call at the point chosen (`Findings.flagged`): the red flag
    probability: float | None = None  # calibrated probability of pneumothorax; None for an uncalibrated model


COLUMNS = ("Case", "View", "Age", "Sex", "AI", "cm²", "Status")  # short: the film needs the width
COLUMN_TIPS = (
    "Anonymised case number (the image id is in the tooltip of each row)",
    "View position (PA / AP)",
    "Patient age",
    "Patient sex",
    "AI: the calibrated probability of pneumothorax (%), or the raw score 0-1 for an uncalibrated model; "
    "red: flagged at the triage point (Tools and findings: Triage flag)",
    "Lesion area in cm²: the reader's mask once drawn or reviewed, otherwise the AI's",
    "Review status",
)
SCORE_COLUMN = COLUMNS.index("AI")


def _age_number(age: str) -> float:
    digits = "".join(ch for ch in age if ch.isdigit())
    return float(digits) if digits else math.inf


class WorklistModel(QAbstractTableModel):
    """The rows, kept in sort order by the model itself.

    Scores arrive one by one during a folder sweep; re-sorting on each (what a dynamic sort proxy
    does, with a Python call per comparison) would stall the window on large folders. Instead the
    order is refreshed at most every RESORT_DELAY_MS, by one C-speed `sorted`.
    """

    RESORT_DELAY_MS = 300

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[WorklistRow] = []
        self._index: dict[str, int] = {}
        self._sort_column = SCORE_COLUMN
        self._sort_order = Qt.SortOrder.DescendingOrder
        self._resort_timer = QTimer(self)
        self._resort_timer.setSingleShot(True)
        self._resort_timer.setInterval(self.RESORT_DELAY_MS)
        self._resort_timer.timeout.connect(self.resort)

    # -- content ------------------------------------------------------------------------------
    def set_rows(self, rows: list[WorklistRow]) -> None:
        self.beginResetModel()
        self._rows = self._sorted(rows)
        self._reindex()
        self.endResetModel()

    def _reindex(self) -> None:
        self._index = {row.image_id: number for number, row in enumerate(self._rows)}

    def append_rows(self, rows: list[WorklistRow]) -> None:
        rows = [row for row in rows if row.image_id not in self._index]
        if not rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        for row in rows:
            self._index[row.image_id] = len(self._rows)
            self._rows.append(row)
        self.endInsertRows()

    def update_row(self, image_id: str, **changes: Any) -> None:
        number = self._index.get(image_id)
        if number is None:
            return
        self._rows[number] = replace(self._rows[number], **changes)
        self.dataChanged.emit(self.index(number, 0), self.index(number, len(COLUMNS) - 1))
        if not self._resort_timer.isActive():
            self._resort_timer.start()

    # -- order --------------------------------------------------------------------------------
    @property
    def sort_order(self) -> tuple[int, Qt.SortOrder]:
        return self._sort_column, self._sort_order

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort_column, self._sort_order = column, order
        self.resort()

    def resort(self) -> None:
        """Put the rows in sort order now, keeping selections on the same images."""
        self._resort_timer.stop()
        ordered = self._sorted(self._rows)
        if all(a is b for a, b in zip(ordered, self._rows, strict=True)):
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        image_ids = [self._rows[index.row()].image_id for index in persistent]
        self._rows = ordered
        self._reindex()
        self.changePersistentIndexList(
            persistent,
            [self.index(self._index[image_id], index.column())
             for image_id, index in zip(image_ids, persistent, strict=True)],
        )
        self.layoutChanged.emit()

    def _sorted(self, rows: list[WorklistRow]) -> list[WorklistRow]:
        column = self._sort_column
        # sorted() is stable also with reverse=True: equal keys keep folder order.
        return sorted(rows, key=lambda row: self._sort_key(row, column),
                      reverse=self._sort_order == Qt.SortOrder.DescendingOrder)

    def row(self, image_id: str) -> WorklistRow | None:
        number = self._index.get(image_id)
        return None if number is None else self._rows[number]

    def rows(self) -> list[WorklistRow]:
        return list(self._rows)

    def source_row(self, image_id: str) -> int:
        return self._index.get(image_id, -1)

    # -- Qt model ---------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return COLUMN_TIPS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == SORT_ROLE:
            return self._sort_key(row, column)
        if role == IMAGE_ID_ROLE:
            return row.image_id
        if role == Qt.ItemDataRole.ForegroundRole and column == COLUMNS.index("Status"):
            return QColor(STATUS_COLOURS.get(row.status, "#e6edf3"))
        if role == Qt.ItemDataRole.ForegroundRole and column == SCORE_COLUMN and row.score is not None:
            return QColor("#ff7b72") if row.flagged else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.error or f"{row.display_id}: {row.image_id}\n{row.path}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (2, SCORE_COLUMN, 5):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _display(row: WorklistRow, column: int) -> str:
        if column == 0:
            return row.display_id
        if column == 1:
            return row.view
        if column == 2:
            return row.age
        if column == 3:
            return row.sex
        if column == SCORE_COLUMN:
            if row.error:
                return "—"
            if row.score is None:
                return "…"
            return f"{row.score:.2f}" if row.probability is None else f"{row.probability:.0%}"
        if column == 5:
            return "" if row.area_cm2 is None else f"{row.area_cm2:.1f}"
        return row.status

    @staticmethod
    def _sort_key(row: WorklistRow, column: int) -> Any:
        if column == SCORE_COLUMN:
            return -1.0 if row.score is None else row.score  # unpredicted sink to the bottom
        if column == 5:
            return -1.0 if row.area_cm2 is None else row.area_cm2
        if column == 2:
            return _age_number(row.age)
        return WorklistModel._display(row, column)


class WorklistFilter(QSortFilterProxyModel):
    """Keeps rows whose status is in `statuses` (None = all); sorting is the source model's."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._statuses: frozenset[str] | None = None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)

    def set_statuses(self, statuses: frozenset[str] | None) -> None:
        self.beginFilterChange()
        self._statuses = statuses
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex) -> bool:
        if self._statuses is None:
            return True
        model = self.sourceModel()
        status = model.data(model.index(source_row, COLUMNS.index("Status"), source_parent))
        return status in self._statuses

    def image_id_at(self, proxy_row: int) -> str | None:
        if not 0 <= proxy_row < self.rowCount():
            return None
        return self.data(self.index(proxy_row, 0), IMAGE_ID_ROLE)

    def proxy_row_of(self, image_id: str) -> int:
        source = self.sourceModel()
        assert isinstance(source, WorklistModel)
        number = source.source_row(image_id)
        if number < 0:
            return -1
        return self.mapFromSource(source.index(number, 0)).row()

