"""What a folder of studies holds, as bar plots whose bars know their cases.

Each plot is a list of bars; a bar is a label and the image ids it counts, so the app's dock can
filter the worklist to a bar's cases when it is clicked, and `pneumoviewer stats` writes the same
bars as PNG plots and CSV. Histograms (age, lesion area, pixel spacing) are bars over fixed bins.
A case without the value (no age in the header, no spacing, not scored) is counted in an
"unknown" bar or named in the plot's note, never silently dropped.
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pneumoviewer.io.atomic import atomic_write_text
from pneumoviewer.review.case import Case, ReviewStatus

_AGE_BINS = tuple(range(0, 100, 10))  # 0-9, 10-19, ... 90+
_AREA_BINS_CM2 = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Bar:
    label: str
    image_ids: frozenset[str]

    @property
    def count(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True)
class StatPlot:
    key: str  # file name and CSV key: "age", "view", …
    title: str
    xlabel: str
    bars: tuple[Bar, ...]
    note: str = ""  # what is not in the bars, or why there are none


@dataclass(frozen=True)
class DatasetStats:
    cases: int
    plots: tuple[StatPlot, ...]
    notes: tuple[str, ...] = field(default=())

    def plot(self, key: str) -> StatPlot:
        return next(plot for plot in self.plots if plot.key == key)


def _bars(cases: Sequence[Case], key: Callable[[Case], str | None], order: Sequence[str]) -> tuple[Bar, ...]:
    groups: dict[str, set[str]] = {label: set() for label in order}
    for case in cases:
        groups.setdefault(key(case) or UNKNOWN, set()).add(case.image_id)
    return tuple(Bar(label, frozenset(ids)) for label, ids in groups.items() if ids or label in order)


def age_years(age: str | None) -> float | None:
    """A DICOM age ("045Y", "6M", or SIIM's bare "45") in years; None when absent or unreadable."""
    if not age:
        return None
    text = age.strip().upper()
    unit = text[-1] if text[-1] in "YMWD" else "Y"
    digits = text.rstrip("YMWD")
    if not digits.isdigit():
        return None
    return int(digits) / {"Y": 1, "M": 12, "W": 52.18, "D": 365.25}[unit]


def _binned(value: float | None, edges: Sequence[float], digits: int = 0) -> str | None:
    if value is None:
        return None
    for low, high in zip(edges, [*edges[1:], None], strict=True):
        if high is None or value < high:
            return f"{low:.{digits}f}+" if high is None else f"{low:.{digits}f}–{high:.{digits}f}"
    return None  # unreachable: the last bin is open


def _spacing_label(case: Case) -> str | None:
    spacing = case.pixel_spacing_mm
    return None if spacing is None else f"{spacing[0]:.3f}"


def dataset_stats(cases: Sequence[Case], lesion_area_cm2: Mapping[str, float | None],
                  labels: Mapping[str, bool] | None = None) -> DatasetStats:
    """The plots of `cases`. `lesion_area_cm2`: each case's lesion area (the worklist's cm² column:
    the reader's mask once reviewed, else the AI's), None or missing = no lesion or no spacing.
    `labels` (image id -> has pneumothorax), when a labels file was given."""
    age_edges = [float(edge) for edge in _AGE_BINS]
    age_order = [_binned(edge + 0.5, age_edges) or "" for edge in age_edges]
    plots = [
        StatPlot("age", "Age", "years", _bars(cases, lambda c: _binned(age_years(c.patient_age), age_edges),
                                              age_order)),
        StatPlot("sex", "Sex", "", _bars(cases, lambda c: (c.patient_sex or "").upper() or None, ["F", "M"])),
        StatPlot("view", "View position", "", _bars(cases, lambda c: (c.view_position or "").upper() or None,
                                                    ["PA", "AP"])),
        _ai_plot(cases),
        StatPlot("review", "Review status", "", _bars(cases, lambda c: c.status.value,
                                                      [status.value for status in ReviewStatus])),
        _area_plot(cases, lesion_area_cm2),
        StatPlot("spacing", "Pixel spacing (row)", "mm",
                 _bars(cases, _spacing_label, sorted({label for c in cases if (label := _spacing_label(c))})),
                 note=_spacing_note(cases)),
    ]
    if labels is not None:
        plots.append(StatPlot("labels", "Labels", "", _bars(
            cases, lambda c: None if c.image_id not in labels else "pneumothorax" if labels[c.image_id] else "none",
            ["pneumothorax", "none"])))
    notes = () if cases else ("No readable image in this folder: every plot is empty.",)
    return DatasetStats(len(cases), tuple(plots), notes)


def _ai_plot(cases: Sequence[Case]) -> StatPlot:
    def call(case: Case) -> str:
        if case.ai_score is None:
            return "not scored"
        return "positive" if case.ai_positive else "negative"

    bars = _bars(cases, call, ["positive", "negative", "not scored"])
    scored = sum(bar.count for bar in bars if bar.label != "not scored")
    positive = next(bar.count for bar in bars if bar.label == "positive")
    title = f"AI call: {positive / scored:.0%} positive of {scored} scored" if scored else "AI call: none scored yet"
    note = "" if scored else "The AI has not scored these images yet (open them in the app, or run predict)."
    return StatPlot("ai", title, "", bars, note)


def _area_plot(cases: Sequence[Case], areas: Mapping[str, float | None]) -> StatPlot:
    with_area = [case for case in cases if areas.get(case.image_id)]
    edges = list(_AREA_BINS_CM2)
    order = [label for label in (_binned(edge + 1e-6, edges) for edge in edges) if label]
    bars = _bars(with_area, lambda c: _binned(areas.get(c.image_id), edges), order)
    note = "" if with_area else "No case has a lesion with a measured area (no lesion, or no pixel spacing)."
    return StatPlot("lesion_area", f"Lesion area per image ({len(with_area)} with lesions)", "cm²", bars, note)


def _spacing_note(cases: Sequence[Case]) -> str:
    unknown = sum(case.pixel_spacing_mm is None for case in cases)
    return f"{unknown} image(s) without pixel spacing: their areas are in pixels only." if unknown else ""


def stats_csv(stats: DatasetStats) -> str:
    """One row per bar: plot, bar, count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["plot", "bar", "count"])
    for plot in stats.plots:
        for bar in plot.bars:
            writer.writerow([plot.key, bar.label, bar.count])
    return buffer.getvalue()


def write_stats(stats: DatasetStats, folder: Path) -> list[Path]:
    """`<plot>.png` per plot and statistics.csv into `folder`; the files written."""
    from pneumoviewer.reports.plots import bar_plot, png_bytes

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for plot in stats.plots:
        figure = bar_plot([bar.label for bar in plot.bars], [bar.count for bar in plot.bars], plot.title)
        axes = figure.axes[0]
        if len(plot.bars) > 5:
            axes.tick_params(axis="x", labelrotation=45)
        note = plot.note or (stats.notes[0] if stats.notes else "")
        if note and not any(bar.count for bar in plot.bars):  # nothing drawn: the note says why, in the middle
            axes.text(0.5, 0.5, note, ha="center", va="center", wrap=True, fontsize=9, color="#6b7280",
                      transform=axes.transAxes)
            note = ""
        axes.set_xlabel("\n".join(filter(None, [plot.xlabel, textwrap.fill(note, 60)])))
        path = folder / f"{plot.key}.png"
        path.write_bytes(png_bytes(figure))
        written.append(path)
    csv_path = folder / "statistics.csv"
    atomic_write_text(csv_path, stats_csv(stats))
    written.append(csv_path)
    return written
