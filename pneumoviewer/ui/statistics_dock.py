"""View → Dataset statistics: bar plots of the open folder; clicking a bar shows only its cases.

(The plots: age, sex, view, the AI's calls, review statuses, lesion area per image, pixel spacing.)

The plots are `reports.dataset_stats` (the same bars `pneumoviewer stats` writes), drawn with
pyqtgraph. They are recomputed when the dock is shown and, while it is, a second after cases change
(statuses, AI results: a sweep changes hundreds, so the refresh waits for a pause).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from pneumoviewer.ui.pyqtgraph_lean import pg
from pneumoviewer.ui.theme import ACCENT

if TYPE_CHECKING:
    from pneumoviewer.reports.dataset_stats import Bar, DatasetStats, StatPlot
    from pneumoviewer.ui.controller import ReviewController

_REFRESH_AFTER_MS = 1000
_COLUMNS = 2


class ClickableBars(pg.BarGraphItem):
    """Bars at x = 0, 1, 2…; a click on one reports its index."""

    def __init__(self, counts: list[int], on_click) -> None:
        super().__init__(x=list(range(len(counts))), height=counts, width=0.7, brush=ACCENT)
        self._on_click = on_click
        self._count = len(counts)

    def mouseClickEvent(self, ev) -> None:
        index = int(round(ev.pos().x()))
        if ev.button() == Qt.MouseButton.LeftButton and 0 <= index < self._count:
            ev.accept()
            self._on_click(index)


class StatisticsDock(QDockWidget):
    sigFilterChanged = Signal(str)  # what the worklist shows now, in words

    def __init__(self, controller: ReviewController, parent: QWidget | None = None) -> None:
        super().__init__("Statistics", parent)
        self._sized = False  # given its size on first show (a floating dock starts tiny)
        self.setObjectName("Statistics")
        self.controller = controller
        self.stats: DatasetStats | None = None
        self.filter_text = ""
        self.graphs = pg.GraphicsLayoutWidget()
        self.graphs.setBackground("#0b0c0f")
        self.summary = QLabel("Open a folder to see its statistics.")
        self.summary.setWordWrap(True)
        self.show_all = QPushButton("Show all cases")
        self.show_all.setEnabled(False)
        self.show_all.clicked.connect(self.clear_filter)
        header = QHBoxLayout()
        header.addWidget(self.summary, 1)
        header.addWidget(self.show_all)
        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(4, 4, 4, 4)
        column.addLayout(header)
        column.addWidget(self.graphs, 1)
        self.setWidget(body)
        self.setMinimumWidth(420)
        # Seven plots want room: the dock opens as its own window beside the film (it can be docked).
        self.setFloating(True)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(_REFRESH_AFTER_MS)
        self.timer.timeout.connect(self.refresh)
        controller.sigSessionOpened.connect(self._session_opened)
        controller.sigCaseChanged.connect(lambda *_: self.timer.start() if self.isVisible() else None)
        self.visibilityChanged.connect(lambda visible: self.refresh() if visible else None)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._sized and self.isFloating():
            self._sized = True
            self.resize(960, 820)

    def _session_opened(self) -> None:
        self.clear_filter()
        if self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        """Count the open folder's cases again and redraw every plot."""
        from pneumoviewer.reports.dataset_stats import dataset_stats

        session = self.controller.session
        self.graphs.clear()
        if session is None:
            self.stats = None
            self.summary.setText("Open a folder to see its statistics.")
            return
        findings = self.controller.findings
        areas = {case.image_id: findings.row_area(case) for case in session.cases}
        self.stats = dataset_stats(session.cases, areas)
        for number, plot in enumerate(self.stats.plots):
            self._draw(plot, number // _COLUMNS, number % _COLUMNS)
        self._show_summary()

    def _draw(self, plot: StatPlot, row: int, column: int) -> None:
        item = self.graphs.addPlot(row=row, col=column, title=plot.title)
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        bars = list(plot.bars)
        item.addItem(ClickableBars([bar.count for bar in bars], lambda index: self.filter_to(plot, bars[index])))
        axis = item.getAxis("bottom")
        step = 1 if len(bars) <= 6 else 2  # every other label where many bins would overlap
        axis.setTicks([[(index, bar.label) for index, bar in enumerate(bars) if index % step == 0]])
        item.setXRange(-0.6, len(bars) - 0.4, padding=0)
        item.setYRange(0, max([bar.count for bar in bars] + [1]) * 1.1, padding=0)
        tips = [f"{bar.label}: {bar.count}" for bar in bars] + ([plot.note] if plot.note else [])
        item.setToolTip("Click a bar to show only its cases.\n" + "\n".join(tips))

    def filter_to(self, plot: StatPlot, bar: Bar) -> None:
        """Show only `bar`'s cases in the worklist."""
        self.controller.worklist_model.set_image_ids(bar.image_ids)
        self.filter_text = f"{plot.title.split(':')[0]} = {bar.label} ({bar.count} case(s))"
        self.show_all.setEnabled(True)
        self._show_summary()
        self.sigFilterChanged.emit(self.filter_text)

    def clear_filter(self) -> None:
        self.controller.worklist_model.set_image_ids(None)
        self.filter_text = ""
        self.show_all.setEnabled(False)
        self._show_summary()
        self.sigFilterChanged.emit("")

    def _show_summary(self) -> None:
        if self.stats is None:
            return
        shown = f"Worklist: only {self.filter_text}." if self.filter_text else "Click a bar to show only its cases."
        notes = " ".join(plot.note for plot in self.stats.plots if plot.note)
        self.summary.setText(f"{self.stats.cases} case(s). {shown} {notes}".strip())
