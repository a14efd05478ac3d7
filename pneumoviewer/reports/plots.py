"""The plots of the file reports (evaluation, dataset statistics), drawn with matplotlib.

Why matplotlib: the file reports need static, publication-quality vector plots (SVG inlined in HTML,
PNG for the statistics) with no display; matplotlib does that headless (the Agg canvas of a bare
`Figure`, no pyplot and no global backend), is the field's usual choice, and its plots look the same
on every machine. The app draws with pyqtgraph instead (interactive, already loaded). matplotlib is
imported inside these functions only, so the app and `--help` never pay for it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ACCENT = "#2f6fdb"
MUTED = "#8a8f98"
WARN = "#d1495b"


def new_figure(width_in: float = 4.6, height_in: float = 3.4) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    return figure


def svg(figure: Figure) -> str:
    """The figure as an SVG element to inline in HTML (fonts as paths: the same everywhere)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})  # the same plot, the same bytes
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def png_bytes(figure: Figure, dpi: int = 120) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def roc_plot(false_positive_rates: Sequence[float], true_positive_rates: Sequence[float], title: str,
             marks: Sequence[tuple[str, float, float]] = ()) -> Figure:
    """The ROC curve, the chance diagonal, and operating points as labelled dots (name, 1 - spec, sens)."""
    figure = new_figure(4.4, 4.0)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=1, label="chance")
    axes.step(false_positive_rates, true_positive_rates, where="post", color=ACCENT, linewidth=2, label="model")
    for name, x, y in marks:
        axes.plot([x], [y], marker="o", color=WARN, markersize=7)
        axes.annotate(name, (x, y), textcoords="offset points", xytext=(8, -12), fontsize=9)
    axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 − specificity (false alarms)", ylabel="sensitivity",
             title=title)
    axes.set_aspect("equal")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return figure


def confusion_plot(true_positive: int, false_positive: int, false_negative: int, true_negative: int,
                   title: str) -> Figure:
    """The 2 × 2 confusion matrix with counts, truth in columns as evaluate prints it."""
    import numpy as np

    figure = new_figure(3.2, 2.8)
    axes = figure.add_subplot()
    counts = np.array([[true_positive, false_positive], [false_negative, true_negative]])
    axes.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max()), 1))
    for (row, column), value in np.ndenumerate(counts):
        colour = "white" if value > counts.max() * 0.6 else "black"
        axes.text(column, row, str(value), ha="center", va="center", fontsize=14, color=colour)
    axes.set_xticks([0, 1], ["truth +", "truth −"])
    axes.set_yticks([0, 1], ["called +", "called −"])
    axes.set_title(title, fontsize=10)
    return figure


def reliability_plot(mean_predicted: Sequence[float], observed: Sequence[float], counts: Sequence[int],
                     title: str, xlabel: str) -> Figure:
    """Observed rate against predicted probability per bin (dots sized by count), with the diagonal."""
    figure = new_figure(4.4, 4.0)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=1, label="perfectly calibrated")
    largest = max(counts) if counts else 1
    sizes = [30 + 300 * count / largest for count in counts]
    axes.plot(mean_predicted, observed, color=ACCENT, linewidth=1.5)
    axes.scatter(mean_predicted, observed, s=sizes, color=ACCENT, alpha=0.7, label="bins (size: images)")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel=xlabel, ylabel="observed share with pneumothorax", title=title)
    axes.set_aspect("equal")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8)
    return figure


def histogram_plot(values: Sequence[float], bins: Sequence[float] | int, title: str, xlabel: str,
                   ylabel: str = "images") -> Figure:
    figure = new_figure()
    axes = figure.add_subplot()
    axes.hist(values, bins=bins, color=ACCENT, edgecolor="white")
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3, axis="y")
    return figure


def bar_plot(labels: Sequence[str], counts: Sequence[float], title: str, ylabel: str = "images") -> Figure:
    figure = new_figure()
    axes = figure.add_subplot()
    bars = axes.bar(list(labels), list(counts), color=ACCENT)
    axes.bar_label(bars, fmt="%g", fontsize=8)
    axes.set(title=title, ylabel=ylabel)
    axes.grid(alpha=0.3, axis="y")
    return figure


def line_plot(x: Sequence[float], series: Sequence[tuple[str, Sequence[float]]], title: str, xlabel: str,
              ylabel: str) -> Figure:
    figure = new_figure()
    axes = figure.add_subplot()
    for label, values in series:
        axes.plot(x, values, marker="o", markersize=3, label=label)
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figure
