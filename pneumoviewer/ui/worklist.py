"""The triage worklist's rows: one per image, sorted by AI score, filterable by review status.

Rows are plain snapshots (`WorklistRow`) that the review controller refreshes from the session; the
table (worklist_table.py) only shows them. No widgets here: the controller owns this model.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleData,
    QModelRoleDataSpan,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor

from pneumoviewer.ui.theme import STATUS_COLOURS

SORT_ROLE = int(Qt.ItemDataRole.UserRole) + 1
IMAGE_ID_ROLE = int(Qt.ItemDataRole.UserRole) + 2


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
    ai_warning: str | None = None  # why the AI is not validated for this image (io.ai_scope): shown, scored on request


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
STATUS_COLUMN = COLUMNS.index("Status")
WARNING_COLOUR = "#d29922"  # amber: an image the AI is not validated for


def _age_number(age: str) -> float:
    digits = "".join(ch for ch in age if ch.isdigit())
    return float(digits) if digits else math.inf


class WorklistModel(QAbstractTableModel):
    """The worklist as the table shows it: every row kept in sort order, and of those the rows the
    status and case filters let through.

    Sorting and filtering are list operations over the plain rows followed by one layoutChanged, which
    keeps the selection on the same images. (A QSortFilterProxyModel asked for every row's status
    through `index` and `data`, Python calls, on each filter change and again after each re-sort:
    ~130 ms per change on 10,000 rows.) Scores arrive one by one during a folder sweep, so the order is
    refreshed at most every RESORT_DELAY_MS, and rows changed in one event-loop turn are redrawn by one
    dataChanged.
    """

    RESORT_DELAY_MS = 300

    # After a re-sort or filter change, once the views have followed it (their selection moved with its
    # rows): what the first row is can be asked then. A slot on layoutChanged may run before the views'.
    sigRearranged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[WorklistRow] = []  # all rows, in sort order
        self._index: dict[str, int] = {}  # image id -> its place in _rows
        self._shown: list[int] | None = None  # the places in _rows the filters let through, ascending; None: all
        self._statuses: frozenset[str] | None = None
        self._image_ids: frozenset[str] | None = None  # a statistics bar's cases
        self._sort_column = SCORE_COLUMN
        self._sort_order = Qt.SortOrder.DescendingOrder
        self._changed_ids: set[str] = set()  # rows updated since the last redraw
        self._resort_timer = self._timer(self.RESORT_DELAY_MS, self.resort)
        self._refilter_timer = self._timer(0, self._refilter)  # a row's status left or entered the filter
        self._redraw_timer = self._timer(0, self._redraw_changed)

    def _timer(self, interval_ms: int, slot: Callable[[], object]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(interval_ms)
        timer.timeout.connect(slot)
        return timer

    # -- content ------------------------------------------------------------------------------
    def set_rows(self, rows: list[WorklistRow]) -> None:
        self.beginResetModel()
        self._rows = [rows[number] for number in self._order(rows)]
        self._reindex()
        self._changed_ids.clear()
        self.endResetModel()

    def _reindex(self) -> None:
        self._index = {row.image_id: number for number, row in enumerate(self._rows)}
        self._shown = None if self._statuses is None and self._image_ids is None else [
            number for number, row in enumerate(self._rows) if self._accepts(row)]

    def append_rows(self, rows: list[WorklistRow]) -> None:
        """Add rows (those of images not listed yet) at the end; they take their sorted place with the next resort."""
        rows = [row for row in rows if row.image_id not in self._index]
        if not rows:
            return
        shown = None if self._shown is None else [
            place for place, row in enumerate(rows, len(self._rows)) if self._accepts(row)]
        count = len(rows) if shown is None else len(shown)
        if count:
            self.beginInsertRows(QModelIndex(), self.rowCount(), self.rowCount() + count - 1)
        for row in rows:
            self._index[row.image_id] = len(self._rows)
            self._rows.append(row)
        if shown and self._shown is not None:
            self._shown.extend(shown)
        if count:
            self.endInsertRows()
        if not self._resort_timer.isActive():
            self._resort_timer.start()

    def update_row(self, image_id: str, **changes: Any) -> None:
        self.update_rows([image_id], **changes)

    def update_rows(self, image_ids: Iterable[str], **changes: Any) -> None:
        """The same changes to each of these rows; one redraw, refilter and resort follow (a model switched
        or unavailable touches every row of a 10,000-study folder: the timers once, not per row)."""
        changed = refilter = False
        for image_id in image_ids:
            number = self._index.get(image_id)
            if number is None:
                continue
            before = self._rows[number]
            self._rows[number] = after = replace(before, **changes)
            refilter = refilter or self._accepts(before) != self._accepts(after)
            self._changed_ids.add(image_id)
            changed = True
        if not changed:
            return
        if refilter:
            self._refilter_timer.start()
        self._redraw_timer.start()
        if not self._resort_timer.isActive():
            self._resort_timer.start()

    def _redraw_changed(self) -> None:
        shown = [row for image_id in self._changed_ids if (row := self.row_of(image_id)) >= 0]
        self._changed_ids.clear()
        if shown:
            self.dataChanged.emit(self.index(min(shown), 0), self.index(max(shown), len(COLUMNS) - 1))

    # -- order and filter -----------------------------------------------------------------------
    @property
    def sort_order(self) -> tuple[int, Qt.SortOrder]:
        return self._sort_column, self._sort_order

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort_column, self._sort_order = column, order
        self.resort()

    def resort(self) -> None:
        """Put the rows in sort order now, keeping selections on the same images."""
        self._resort_timer.stop()
        order = self._order(self._rows)
        if order != range(len(order)):
            self._relayout(lambda: setattr(self, "_rows", [self._rows[number] for number in order]))

    def set_statuses(self, statuses: frozenset[str] | None) -> None:
        """Show only the rows of these review statuses (None: every status)."""
        if statuses != self._statuses:
            self._relayout(lambda: setattr(self, "_statuses", statuses))

    def set_image_ids(self, image_ids: frozenset[str] | None) -> None:
        """Show only the rows of these images (None: every image)."""
        if image_ids != self._image_ids:
            self._relayout(lambda: setattr(self, "_image_ids", image_ids))

    def _refilter(self) -> None:
        self._relayout(lambda: None)

    def _relayout(self, change: Callable[[], object]) -> None:
        """Apply `change` (a new order or filter) as one layout change; persistent indexes (the selection,
        the current row) follow their images, or become invalid where the filter now hides them."""
        self._refilter_timer.stop()
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        image_ids = [self.image_id_at(index.row()) for index in persistent]
        change()
        self._reindex()
        moved = []
        for image_id, index in zip(image_ids, persistent, strict=True):
            row = -1 if image_id is None else self.row_of(image_id)
            moved.append(self.index(row, index.column()) if row >= 0 else QModelIndex())
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()
        self.sigRearranged.emit()

    def _accepts(self, row: WorklistRow) -> bool:
        return ((self._statuses is None or row.status in self._statuses)
                and (self._image_ids is None or row.image_id in self._image_ids))

    def _order(self, rows: list[WorklistRow]) -> range | list[int]:
        """The places of `rows` in sort order; equal keys keep their order (sorted() is stable, also reversed)."""
        keys = _sort_keys(rows, self._sort_column)
        order = sorted(range(len(rows)), key=keys.__getitem__, reverse=self._sort_order == Qt.SortOrder.DescendingOrder)
        return range(len(rows)) if order == list(range(len(rows))) else order

    # -- lookups --------------------------------------------------------------------------------
    def row(self, image_id: str) -> WorklistRow | None:
        number = self._index.get(image_id)
        return None if number is None else self._rows[number]

    def rows(self) -> list[WorklistRow]:
        """Every row, shown or not, in sort order."""
        return list(self._rows)

    @property
    def total_count(self) -> int:
        """How many rows there are, shown or not (`rowCount` counts the shown ones)."""
        return len(self._rows)

    def image_id_at(self, row: int) -> str | None:
        """The image of the shown row `row`; None out of range."""
        shown = self.shown_row(row)
        return None if shown is None else shown.image_id

    def shown_row(self, row: int) -> WorklistRow | None:
        """The shown row `row`; None out of range."""
        if not 0 <= row < self.rowCount():
            return None
        return self._rows[row if self._shown is None else self._shown[row]]

    def row_of(self, image_id: str) -> int:
        """Where the image's row is shown; -1 when it is filtered out or not listed."""
        number = self._index.get(image_id, -1)
        if number < 0 or self._shown is None:
            return number
        row = bisect.bisect_left(self._shown, number)
        return row if row < len(self._shown) and self._shown[row] == number else -1

    # -- Qt model ---------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid():
            return 0
        return len(self._rows) if self._shown is None else len(self._shown)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def index(self, row: int, column: int,
              parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        """Qt's own range check asks `rowCount` and `columnCount`: two more calls into Python per cell painted."""
        if parent.isValid() or not (0 <= row < self.rowCount() and 0 <= column < len(COLUMNS)):
            return QModelIndex()
        return self.createIndex(row, column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return COLUMN_TIPS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        number = index.row()
        return _value(self._rows[number if self._shown is None else self._shown[number]], index.column(), int(role))

    def multiData(self, index: QModelIndex | QPersistentModelIndex, roles: QModelRoleDataSpan | QModelRoleData) -> None:
        """Every role the table's delegate asks of a cell, in one call: Qt's default asks `data` once per
        role, seven calls into Python per cell, ~2,000 per repaint of the list, and each such call
        waits for the GIL while a worker runs Python (3x slower repaints measured while indexing)."""
        entries = cast("Iterable[QModelRoleData]", roles)  # the span iterates; PySide's stubs omit it
        if not index.isValid():
            for entry in entries:
                entry.clearData()
            return
        number, column = index.row(), index.column()
        row = self._rows[number if self._shown is None else self._shown[number]]
        for entry in entries:
            entry.setData(_value(row, column, entry.role()))


_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_RIGHT_ALIGNED = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
RIGHT_ALIGNED_COLUMNS = (2, SCORE_COLUMN, 5)  # numbers
_STATUS_QCOLOURS = {status: QColor(colour) for status, colour in STATUS_COLOURS.items()}
_OTHER_STATUS_QCOLOUR = QColor("#e6edf3")
_WARNING_QCOLOUR = QColor(WARNING_COLOUR)
_FLAG_QCOLOUR = QColor("#ff7b72")


def _value(row: WorklistRow, column: int, role: int) -> Any:
    """What the table shows of `row` in `column` for `role` (an int); None for a role it has nothing for."""
    if role == _DISPLAY:
        return cell_text(row, column)
    if role == _FOREGROUND:
        return cell_colour(row, column)
    if role == _ALIGNMENT:
        return _RIGHT_ALIGNED if column in RIGHT_ALIGNED_COLUMNS else None
    if role == _TOOLTIP:
        tip = row.error or f"{row.display_id}: {row.image_id}\n{row.path}"
        return f"{row.ai_warning}\n{tip}" if row.ai_warning else tip
    if role == SORT_ROLE:
        return _sort_keys([row], column)[0]
    if role == IMAGE_ID_ROLE:
        return row.image_id
    return None


def cell_colour(row: WorklistRow, column: int) -> QColor | None:
    """The text colour of `row` in `column`; None for the palette's."""
    if column == STATUS_COLUMN:
        return _STATUS_QCOLOURS.get(row.status, _OTHER_STATUS_QCOLOUR)
    if column == SCORE_COLUMN and row.ai_warning:
        return _WARNING_QCOLOUR
    if column == SCORE_COLUMN and row.score is not None and row.flagged:
        return _FLAG_QCOLOUR
    return None


def cell_text(row: WorklistRow, column: int) -> str:
    """What the table shows of `row` in `column`."""
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
            return "⚠" if row.ai_warning else "…"  # not validated: marked, and scored only on request
        value = f"{row.score:.2f}" if row.probability is None else f"{row.probability:.0%}"
        return f"⚠ {value}" if row.ai_warning else value
    if column == 5:
        return "" if row.area_cm2 is None else f"{row.area_cm2:.1f}"
    return row.status


def _sort_keys(rows: list[WorklistRow], column: int) -> list[Any]:
    """One sort key per row for `column`: numbers where the column holds numbers."""
    if column == SCORE_COLUMN:
        return [-1.0 if row.score is None else row.score for row in rows]  # unpredicted sink to the bottom
    if column == 5:
        return [-1.0 if row.area_cm2 is None else row.area_cm2 for row in rows]
    if column == 2:
        ages: dict[str, float] = {}  # few distinct ages: each parsed once
        return [ages[row.age] if row.age in ages else ages.setdefault(row.age, _age_number(row.age)) for row in rows]
    return [cell_text(row, column) for row in rows]
