"""The model card's plots in Help → About the AI model: training history, operating points, calibration.

Drawn with pyqtgraph from `reports.model_facts.card_curves`; a plot the card cannot fill says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pneumoviewer.ui.pyqtgraph_lean import pg

_COLOURS = {"roc_auc": "#2f81f7", "challenge_score": "#3fb950", "all_empty_score": "#8b949e"}
_NAMES = {"roc_auc": "ROC AUC", "challenge_score": "challenge score", "all_empty_score": "all-empty baseline"}


class ModelCardPlots(pg.GraphicsLayoutWidget):
    """The three plots side by side; `notes` says what the card could not fill (by plot)."""

    def __init__(self, card: Mapping[str, Any] | None) -> None:
        from pneumoviewer.reports.model_facts import card_curves

        super().__init__()
        curves = card_curves(card)
        self.notes = curves.notes
        _draw(self, curves)


def _draw(widget: pg.GraphicsLayoutWidget, curves: Any) -> None:
    widget.setObjectName("model-card-plots")
    widget.setBackground("#0b0c0f")
    widget.setMinimumHeight(300)
    history = widget.addPlot(row=0, col=0, title="Validation by epoch")
    history.addLegend(offset=(-5, -5))  # bottom right: validation figures rise with the epochs
    for name, values in curves.history.items():
        history.plot(curves.epochs, values, pen=pg.mkPen(_COLOURS[name], width=2), symbol="o", symbolSize=5,
                     symbolBrush=_COLOURS[name], name=_NAMES[name])
    history.setLabel("bottom", "epoch")
    _note(history, curves.notes.get("history"))
    operating = widget.addPlot(row=0, col=1, title="Operating points")
    operating.plot([0, 1], [0, 1], pen=pg.mkPen("#6e7681", style=pg.QtCore.Qt.PenStyle.DashLine))
    if curves.operating_curve:
        xs, ys = zip(*sorted(curves.operating_curve), strict=True)
        operating.plot(list(xs), list(ys), pen=pg.mkPen("#2f81f7", width=2), stepMode=None)
    for name, (x, y) in curves.points.items():
        operating.plot([x], [y], pen=None, symbol="o", symbolSize=9, symbolBrush="#f85149")
        label = pg.TextItem(name, color="#e6edf3", anchor=(0, 1))
        label.setPos(x, y)
        operating.addItem(label)
    operating.setLabel("bottom", "1 − specificity")
    operating.setLabel("left", "sensitivity")
    operating.setRange(xRange=(0, 1), yRange=(0, 1))
    _note(operating, curves.notes.get("operating"))
    calibration = widget.addPlot(row=0, col=2, title="Calibration")
    calibration.plot([0, 1], [0, 1], pen=pg.mkPen("#6e7681", style=pg.QtCore.Qt.PenStyle.DashLine))
    if curves.calibration:
        xs, ys = zip(*curves.calibration, strict=True)
        calibration.plot(list(xs), list(ys), pen=pg.mkPen("#3fb950", width=2))
    calibration.setLabel("bottom", "score")
    calibration.setLabel("left", "probability")
    calibration.setRange(xRange=(0, 1), yRange=(0, 1))
    _note(calibration, curves.notes.get("calibration"))
    for plot in (history, operating, calibration):
        plot.setMenuEnabled(False)
        plot.hideButtons()
    widget.setToolTip("\n".join(f"{key}: {why}" for key, why in curves.notes.items()))


def _note(plot: pg.PlotItem, note: str | None) -> None:
    if note:
        plot.setTitle(f"{plot.titleLabel.text}<br><span style='font-size:8pt; color:#8b949e'>{note}</span>")
