"""The evaluation report: one self-contained HTML page of `pneumoviewer evaluate`'s results.

Plots are inlined as SVG and thumbnails as base64 PNG, so the page is one file to mail or archive.
It shows what `evaluate` printed, drawn: the ROC curve with its AUC and a bootstrap interval, the
confusion matrix at each operating point the card has, the operating-point table, the reliability
plot (of the calibrated probability, or of the raw score when the card has no calibration), the
per-image Dice on positive images, and the worst misses and false alarms. A part that cannot be
drawn (one class only, no positives, unreadable thumbnails) is replaced by a sentence saying why.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pneumoviewer import metrics
from pneumoviewer.io.atomic import atomic_write_text

REPORT_NAME = "evaluation-report.html"
_WORST = 6  # thumbnails of misses and of false alarms
_THUMBNAIL_PX = 220
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 1100px; color: #1d2127; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
.grid { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.grid svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; } td, th { padding: .3em .8em; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #6b7280; } .thumb { text-align: center; font-size: .85em; }
.thumb img { width: 180px; height: 180px; object-fit: contain; background: #000; display: block; }
.figure { font-size: 1.3em; font-weight: 600; }
footer { margin-top: 3em; color: #6b7280; font-size: .85em; }
"""


def auc_interval(scores: Sequence[float], truth: Sequence[bool], resamples: int = 1000) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the ROC AUC (images resampled; one-class resamples left out)."""
    values, present = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=bool)
    return metrics.bootstrap_interval(lambda rows: metrics.roc_auc(values[rows], present[rows]), values.size,
                                      resamples)


def write_evaluation_report(summary: Mapping[str, Any], image_paths: Mapping[str, Path], folder: Path) -> Path:
    """Write `folder/evaluation-report.html` from evaluate's summary; `image_paths`: ImageId -> file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_NAME
    atomic_write_text(path, evaluation_html(summary, image_paths))
    return path


def evaluation_html(summary: Mapping[str, Any], image_paths: Mapping[str, Path]) -> str:
    per_image = list(summary.get("per_image") or [])
    sections = [f"<h1>Evaluation of {html.escape(Path(str(summary.get('model', 'the model'))).name)}</h1>",
                _overview(summary)]
    if not per_image:
        sections.append("<p class=note>No image could be evaluated, so there are no curves: "
                        f"{html.escape(str(summary.get('reason', 'no labelled image was read')))}.</p>")
    else:
        scores = [float(row["score"]) for row in per_image]
        truth = [bool(row["truth_positive"]) for row in per_image]
        sections += [_roc_section(summary, scores, truth), _confusion_section(summary, per_image),
                     _operating_point_section(summary), _reliability_section(summary, per_image),
                     _dice_section(per_image), _worst_section(per_image, image_paths)]
    sections.append(_skipped_section(summary))
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>PneumoViewer evaluation</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(sections)}"
            f"<footer>Made by PneumoViewer on {generated}: research tool, not a medical device.</footer>"
            "</body></html>\n")


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def _overview(summary: Mapping[str, Any]) -> str:
    rows = [
        ("Images evaluated", summary.get("images_evaluated", 0)),
        ("With pneumothorax", summary.get("positive_images", 0)),
        ("Challenge score (mean Dice)", _number(summary.get("challenge_score"), 4)),
        ("All-empty baseline", _number(summary.get("all_empty_score"), 4)),
        ("Mean Dice on positive images", _number(summary.get("mean_dice_on_positive_images"), 4)),
        ("Labels", html.escape(str(summary.get("labels", "")))),
        ("Images", html.escape(str(summary.get("images", "")))),
    ]
    body = "".join(f"<tr><td>{label}</td><td>{value}</td></tr>" for label, value in rows)
    return f"<table>{body}</table>"


def _roc_section(summary: Mapping[str, Any], scores: list[float], truth: list[bool]) -> str:
    from pneumoviewer.reports.plots import roc_plot, svg

    auc = summary.get("roc_auc")
    if auc is None or (isinstance(auc, float) and math.isnan(auc)):
        kind = "no positive image" if not any(truth) else "no negative image"
        return ("<h2>ROC curve</h2><p class=note>No ROC curve: it needs images with and without pneumothorax, "
                f"and this set has {kind}.</p>")
    low, high = auc_interval(scores, truth)
    curve = metrics.operating_curve(scores, truth)  # highest threshold first
    false_alarms = [0.0] + [1.0 - point.specificity for point in curve] + [1.0]
    found = [0.0] + [point.sensitivity for point in curve] + [1.0]
    marks = [(name, 1.0 - row["specificity"], row["sensitivity"]) for name, row in _shown_points(summary).items()
             if not (math.isnan(row["specificity"]) or math.isnan(row["sensitivity"]))]
    figure = roc_plot(false_alarms, found, f"ROC AUC {auc:.3f}", marks)
    return (f"<h2>ROC curve</h2><p class=figure id=roc-auc>ROC AUC {auc:.3f} "
            f"<span class=note>(95 % bootstrap interval {low:.3f}–{high:.3f})</span></p>"
            f"<div class=grid>{svg(figure)}</div>")


def _shown_points(summary: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The operating points to show: the triage point only when the card measured one."""
    points = dict(summary.get("operating_points") or {})
    triage = points.get("triage")
    if triage is not None and triage.get("card_sensitivity") is None:
        points.pop("triage")
    return points


def _confusion_section(summary: Mapping[str, Any], per_image: list[Mapping[str, Any]]) -> str:
    from pneumoviewer.reports.plots import confusion_plot, svg

    truth = [bool(row["truth_positive"]) for row in per_image]
    calls = {"challenge": [bool(row["called_positive"]) for row in per_image]}
    points = _shown_points(summary)
    if "triage" in points:
        calls = {"triage": [bool(row["flagged"]) for row in per_image], **calls}
    figures = []
    for name, called in calls.items():
        confusion = metrics.presence_confusion(called, truth)
        threshold = points.get(name, {}).get("threshold")
        title = f"{name} point" + (f" (threshold {threshold:.3f})" if threshold is not None else "")
        figures.append(svg(confusion_plot(confusion.true_positive, confusion.false_positive,
                                          confusion.false_negative, confusion.true_negative, title)))
    note = "" if "triage" in points else ("<p class=note>Only the challenge point: this model's card has no "
                                          "triage operating point.</p>")
    return f"<h2>Confusion matrices</h2>{note}<div class=grid>{''.join(figures)}</div>"


def _operating_point_section(summary: Mapping[str, Any]) -> str:
    points = _shown_points(summary)
    if not points:
        return ""
    header = ("<tr><th>operating point</th><th>threshold</th><th>sensitivity (95 % CI)</th>"
              "<th>specificity (95 % CI)</th><th>called</th><th>card says (sens. / spec.)</th></tr>")
    rows = []
    for name, row in points.items():
        def cell(value: float, interval: Sequence[float]) -> str:
            if value is None or math.isnan(value):
                return "—"
            return f"{value:.3f} ({interval[0]:.3f}–{interval[1]:.3f})"

        card = (f"{_number(row.get('card_sensitivity'))} / {_number(row.get('card_specificity'))}"
                if row.get("card_sensitivity") is not None else "—")
        rows.append(f"<tr><td>{name}</td><td>{row['threshold']:.3f}</td>"
                    f"<td>{cell(row['sensitivity'], row['sensitivity_interval'])}</td>"
                    f"<td>{cell(row['specificity'], row['specificity_interval'])}</td>"
                    f"<td>{row['called']}</td><td>{card}</td></tr>")
    return f"<h2>Operating points</h2><table>{header}{''.join(rows)}</table>"


def _reliability_section(summary: Mapping[str, Any], per_image: list[Mapping[str, Any]]) -> str:
    from pneumoviewer.reports.plots import reliability_plot, svg

    truth = [bool(row["truth_positive"]) for row in per_image]
    calibrated = summary.get("calibration") is not None
    key, what = ("probability", "calibrated probability") if calibrated else ("score", "raw score")
    table = [entry for entry in metrics.reliability_table([float(row[key]) for row in per_image], truth)
             if entry.count]
    note = "" if calibrated else ("<p class=note>This model's card has no calibration: the plot shows the raw "
                                  "triage score, which is not a probability.</p>")
    figure = reliability_plot([entry.mean_predicted for entry in table], [entry.observed_rate for entry in table],
                              [entry.count for entry in table], f"Reliability of the {what}", what)
    return f"<h2>Reliability</h2>{note}<div class=grid>{svg(figure)}</div>"


def _dice_section(per_image: list[Mapping[str, Any]]) -> str:
    from pneumoviewer.reports.plots import histogram_plot, svg

    dice = [float(row["dice"]) for row in per_image if row["truth_positive"]]
    if not dice:
        return ("<h2>Dice on positive images</h2><p class=note>No image with pneumothorax in this set: there is "
                "no Dice distribution to show.</p>")
    figure = histogram_plot(dice, list(np.linspace(0, 1, 21)), f"Per-image Dice on {len(dice)} positive image(s)",
                            "Dice (0 = missed, 1 = exact)")
    return (f"<h2>Dice on positive images</h2><p>median {np.median(dice):.3f}, "
            f"{sum(value == 0 for value in dice)} with Dice 0</p><div class=grid>{svg(figure)}</div>")


def _worst_section(per_image: list[Mapping[str, Any]], image_paths: Mapping[str, Path]) -> str:
    misses = sorted((row for row in per_image if row["truth_positive"]), key=lambda row: row["score"])[:_WORST]
    alarms = sorted((row for row in per_image if not row["truth_positive"]), key=lambda row: -row["score"])[:_WORST]
    parts = ["<h2>Worst misses and false alarms</h2>"]
    for title, rows, empty in (("Positives with the lowest scores", misses, "no positive image"),
                               ("Negatives with the highest scores", alarms, "no negative image")):
        parts.append(f"<h3>{title}</h3>")
        if not rows:
            parts.append(f"<p class=note>None: this set has {empty}.</p>")
            continue
        cells = [_thumbnail_cell(row, image_paths.get(row["image_id"])) for row in rows]
        parts.append(f"<div class=grid>{''.join(cells)}</div>")
    return "".join(parts)


def _thumbnail_cell(row: Mapping[str, Any], path: Path | None) -> str:
    call = "called +" if row["called_positive"] else "called −"
    caption = (f"score {row['score']:.3f}, {call}, Dice {row['dice']:.2f}<br>"
               f"<span class=note>{html.escape(str(row['image_id'])[-24:])}</span>")
    image = _thumbnail_data(path)
    picture = (f"<img alt='radiograph' src='data:image/png;base64,{image}'>" if image else
               "<p class=note>image not readable</p>")
    return f"<div class=thumb>{picture}{caption}</div>"


def _thumbnail_data(path: Path | None) -> str | None:
    from PIL import Image

    from pneumoviewer.io.dicom import DicomError
    from pneumoviewer.io.images import load_radiograph

    if path is None:
        return None
    try:
        pixels = load_radiograph(path).pixels
    except DicomError:
        return None
    picture = Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8), mode="L")
    picture.thumbnail((_THUMBNAIL_PX, _THUMBNAIL_PX), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _skipped_section(summary: Mapping[str, Any]) -> str:
    skipped = list(summary.get("skipped") or [])
    if not skipped:
        return ""
    items = "".join(f"<li>{html.escape(str(entry['path']))}: {html.escape(str(entry['reason']))}</li>"
                    for entry in skipped[:50])
    more = f"<li>… and {len(skipped) - 50} more</li>" if len(skipped) > 50 else ""
    return (f"<h2>Not evaluated</h2><p class=note>{len(skipped)} file(s) could not be evaluated:</p>"
            f"<ul>{items}{more}</ul>")
