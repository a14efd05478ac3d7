"""`pneumoviewer evaluate`: the model against labelled DICOMs, next to the all-empty baseline.

The challenge score (mean per-image Dice, empty-on-empty = 1) is only meaningful beside what
predicting "no pneumothorax" everywhere scores on the same images (the share of negatives), so both
are always reported, with the presence confusion matrix, sensitivity, specificity, ROC AUC of the
triage score, and the latency per image. The operating-point table gives both calls (the triage flag
at the card's triage point, the challenge call) with 95 % bootstrap intervals beside what the card
says; with a calibrated model, the calibrated probability's Brier score, calibration error and
reliability bins (in the JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumoviewer.commands import fail, report
from pneumoviewer.commands._settings import add_setting_arguments, request_settings, setting_overrides
from pneumoviewer.errors import FileProblem

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers
    from pneumoviewer.commands._batch import ImageFile, Predicted
    from pneumoviewer.model.inference import Predictor


@dataclass(frozen=True)
class ImageScore:
    image_id: str
    score: float
    truth_positive: bool
    called_positive: bool  # the challenge call (`Prediction.positive`)
    flagged: bool  # the triage call (`Prediction.flagged`)
    probability: float  # `Prediction.pneumothorax_probability` (the score when the model is not calibrated)
    dice: float
    seconds: float  # load + pre + network + post


def read_id_list(path: Path) -> set[str]:
    """ImageIds from a text file (one per line), a labels CSV (its first column, header skipped), a JSON
    list, or a model card's validation split."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read the list of ImageIds ({error})") from None
    if path.suffix.lower() == ".csv":
        first_column = (line.split(",", 1)[0].strip() for line in text.splitlines()[1:])
        return {image_id for image_id in first_column if image_id}
    if path.suffix.lower() != ".json":
        return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if isinstance(values, dict):  # a model card: its recorded validation split
        values = values.get("training", {}).get("split", {}).get("validation_ids")
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise ValueError(f"{path}: expected a JSON list of ImageIds or a model card with training.split.validation_ids")
    return set(values)


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score the model on labelled DICOMs against the all-empty baseline",
        description="Predict every labelled DICOM under --images (recursive) and report the challenge score "
        "(mean Dice) beside the all-empty baseline on the same images, the presence confusion matrix, "
        "sensitivity, specificity, ROC AUC of the triage score and the latency per image. Images without a "
        "label row are skipped with a note.",
    )
    parser.add_argument("--labels", type=Path, required=True, help="labels CSV in the SIIM-ACR format (train-rle.csv)")
    parser.add_argument("--images", type=Path, required=True, help="folder of DICOMs, searched recursively")
    parser.add_argument("--model", type=Path, help="model weights (.safetensors with its .json card; default: bundled)")
    parser.add_argument("--ids", type=Path, help="evaluate only these ImageIds: a text file (one per line), a JSON "
                        "list, or a model card .json (its recorded validation split)")
    parser.add_argument("--json", type=Path, dest="json_out", help="also write the figures and per-image results here")
    parser.add_argument("--report", type=Path, metavar="DIR", help="also write DIR/evaluation-report.html: ROC, "
                        "confusion matrices, operating points, reliability, Dice and the worst cases, drawn")
    add_setting_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        overrides = setting_overrides(args)
    except ValueError as error:
        return fail(str(error), status=2)
    return _evaluate(args.labels, args.images, model=args.model, ids_file=args.ids, json_out=args.json_out,
                     overrides=overrides, score_unvalidated=args.score_unvalidated, report_dir=args.report)


def _evaluate(
    labels: Path,
    images: Path,
    model: Path | None,
    ids_file: Path | None,
    json_out: Path | None,
    overrides: Mapping[str, Any],
    score_unvalidated: bool = False,
    report_dir: Path | None = None,
) -> int:
    """The whole `evaluate` command; returns the exit status."""
    from pneumoviewer.commands._batch import (
        Predicted,
        collect_images,
        open_predictor,
        predict_files,
    )
    from pneumoviewer.io.atomic import atomic_write_text
    from pneumoviewer.model.card import CheckpointError
    from pneumoviewer.progress import progress_bar

    try:
        predictor = open_predictor(model)
        settings = request_settings(predictor.card.settings, overrides)
        truth_rows = _rows_by_image(labels)
        wanted = read_id_list(ids_file) if ids_file is not None else None
    except (CheckpointError, ValueError) as error:  # ValueError: a bad setting, ids file or labels CSV
        return fail(str(error))
    if not images.is_dir():
        return fail(f"{images}: is not a folder")
    files, skipped = collect_images([images])
    for problem in skipped:
        report(problem)
    selected = [f for f in files if f.image_id in truth_rows and (wanted is None or f.image_id in wanted)]
    _print_selection_notes(files, selected, truth_rows, wanted, images)
    if not selected:
        _write_report({"reason": f"no labelled images under {images}", "skipped": _skipped(skipped)}, {},
                      report_dir)
        return fail(f"no labelled images to evaluate under {images}")

    scores: list[ImageScore] = []
    progress = progress_bar(len(selected), "evaluate")
    with progress:
        for result in predict_files(predictor, selected, settings, score_unvalidated=score_unvalidated):
            progress.update()
            scored = _score(result, truth_rows[result.image_id], labels) if isinstance(result, Predicted) else result
            if isinstance(scored, FileProblem):
                skipped.append(scored)
                report(scored, progress)
            else:
                scores.append(scored)
    if not scores:
        _write_report({"reason": "no image could be evaluated", "skipped": _skipped(skipped)}, {}, report_dir)
        return fail("no image could be evaluated")
    summary = _summary(scores, predictor, settings.to_dict(), labels, images, ids_file, skipped)
    print(format_summary(summary))
    if json_out is not None:
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(json_out, json.dumps(_json_safe(summary), indent=2) + "\n")
        except OSError as error:
            return fail(f"{error.filename or json_out}: could not be written ({error.strerror or error})")
        print(f"\nFigures and per-image results: {json_out}")
    return _write_report(summary, {f.image_id: f.path for f in selected if f.image_id}, report_dir)


def _write_report(summary: Mapping[str, Any], paths: Mapping[str, Path], folder: Path | None) -> int:
    """The HTML report into `folder` (none asked for: nothing to do); the exit status."""
    if folder is None:
        return 0
    from pneumoviewer.reports.evaluation import write_evaluation_report

    try:
        path = write_evaluation_report(summary, paths, folder)
    except OSError as error:
        return fail(f"{error.filename or folder}: the report could not be written ({error.strerror or error})")
    print(f"Report: {path}")
    return 0


def _rows_by_image(labels: Path) -> dict[str, list[str]]:
    from pneumoviewer.io.annotations import read_annotation_rows

    rows: dict[str, list[str]] = defaultdict(list)
    for image_id, encoded in read_annotation_rows(labels):
        rows[image_id].append(encoded)
    return dict(rows)


def _print_selection_notes(
    files: list[ImageFile], selected: list[ImageFile], truth_rows: Mapping[str, list[str]],
    wanted: set[str] | None, images: Path,
) -> None:
    unlabelled = [f for f in files if f.image_id not in truth_rows]
    if unlabelled:
        print(f"note: {len(unlabelled)} image(s) under {images} have no label row and are skipped "
              f"(e.g. {unlabelled[0].path})", file=sys.stderr)
    if wanted is not None:
        found = {f.image_id for f in files}
        outside = sum(1 for f in files if f.image_id in truth_rows and f.image_id not in wanted)
        missing = len(wanted - found)
        print(f"note: restricted to {len(selected)} listed image(s); {outside} labelled image(s) not listed"
              + (f"; {missing} listed ImageId(s) not found under {images}" if missing else ""), file=sys.stderr)


def _score(result: Predicted, encodings: list[str], labels: Path) -> ImageScore | FileProblem:
    from pneumoviewer import metrics
    from pneumoviewer.io.rle import RleError, decode_rows

    mask = result.prediction.mask
    try:
        truth = decode_rows(encodings, mask.shape)
    except RleError as error:
        return FileProblem(result.path, f"its label in {labels} does not fit a {mask.shape[1]}x{mask.shape[0]} "
                           f"image ({error.reason})")
    prediction = result.prediction
    return ImageScore(
        result.image_id, prediction.score, bool(truth.any()), prediction.positive, prediction.flagged,
        prediction.pneumothorax_probability, metrics.dice(mask, truth),
        sum(v for k, v in result.timings.items() if k != "cam"),
    )


def _summary(
    scores: list[ImageScore], predictor: Predictor, settings: dict[str, Any], labels: Path, images: Path,
    ids_file: Path | None, skipped: list[FileProblem],
) -> dict[str, Any]:
    from pneumoviewer import metrics
    from pneumoviewer.commands._batch import latency_summary

    figures = metrics.segmentation_figures(
        [s.dice for s in scores], [s.called_positive for s in scores], [s.score for s in scores],
        [s.truth_positive for s in scores],
    )
    return {
        "model": str(predictor.checkpoint),
        "runtime": predictor.runtime,
        "settings": settings,
        "labels": str(labels),
        "images": str(images),
        "ids_file": None if ids_file is None else str(ids_file),
        **figures.to_dict(),
        "operating_points": _operating_points(scores, predictor, settings),
        "calibration": _calibration_figures(scores) if predictor.calibration is not None else None,
        "latency": {**latency_summary([s.seconds for s in scores]), "model_load_s": predictor.load_seconds},
        "skipped": _skipped(skipped),
        "per_image": [asdict(s) for s in scores],
    }


def _operating_points(scores: list[ImageScore], predictor: Predictor, settings: dict[str, Any]) -> dict[str, Any]:
    """Both calls' sensitivity and specificity here, with 95 % bootstrap intervals, beside the card's."""
    from pneumoviewer import metrics

    truth = [s.truth_positive for s in scores]
    points = predictor.operating_points
    rows = {}
    for name, called, threshold, card_point in (
        ("triage", [s.flagged for s in scores], points.triage.threshold, points.triage if points.measured else None),
        ("challenge", [s.called_positive for s in scores], float(settings["presence_threshold"]), points.challenge),
    ):
        figures = metrics.call_figures(called, truth)
        rows[name] = {
            "threshold": threshold, "sensitivity": figures.sensitivity, "specificity": figures.specificity,
            "sensitivity_interval": list(figures.sensitivity_interval),
            "specificity_interval": list(figures.specificity_interval), "called": figures.called,
            "card_sensitivity": None if card_point is None else card_point.sensitivity,
            "card_specificity": None if card_point is None else card_point.specificity,
        }
    return rows


def _calibration_figures(scores: list[ImageScore]) -> dict[str, Any]:
    from dataclasses import asdict as as_dict

    from pneumoviewer import metrics

    probabilities, truth = [s.probability for s in scores], [s.truth_positive for s in scores]
    return {
        "brier_score": metrics.brier_score(probabilities, truth),
        "brier_score_of_the_raw_score": metrics.brier_score([s.score for s in scores], truth),
        "expected_calibration_error": metrics.expected_calibration_error(probabilities, truth),
        "reliability": [as_dict(entry) for entry in metrics.reliability_table(probabilities, truth)],
    }


def _skipped(problems: list[FileProblem]) -> list[dict[str, str]]:
    return [{"path": str(problem.path), "reason": problem.reason} for problem in problems]


def format_operating_points(points: Mapping[str, Any]) -> list[str]:
    """The operating-point table: both calls, sensitivity and specificity with 95 % intervals."""
    def cell(value: float, interval: list[float]) -> str:
        if math.isnan(value):
            return f"{'—':>20}"
        return f"{value:>6.3f} ({interval[0]:.3f}–{interval[1]:.3f})"

    lines = [f"{'operating point':30}{'threshold':>10}{'sensitivity (95 % CI)':>24}{'specificity (95 % CI)':>24}"
             f"{'called':>8}"]
    labels = {"triage": "triage flag (worklist red)", "challenge": "challenge call (masks, CSV)"}
    for name, row in points.items():
        lines.append(f"{labels.get(name, name):30}{row['threshold']:>10.3f}"
                     f"{cell(row['sensitivity'], row['sensitivity_interval']):>24}"
                     f"{cell(row['specificity'], row['specificity_interval']):>24}{row['called']:>8}")
        if row.get("card_sensitivity") is not None:
            lines.append(f"{'  the card says (out-of-fold)':40}{row['card_sensitivity']:>24.3f}"
                         f"{row['card_specificity']:>24.3f}")
    return lines


def format_summary(summary: Mapping[str, Any]) -> str:
    """The figures as a table a person reads."""
    confusion = summary["confusion"]
    latency = summary["latency"]
    tta = "on" if summary["settings"].get("tta") else "off"
    return "\n".join([
        (f"Evaluated {summary['images_evaluated']} image(s), {summary['positive_images']} with pneumothorax; "
         f"model {Path(summary['model']).name} ({summary['runtime']}), TTA {tta}"),
        "",
        f"{'':34}{'model':>9}{'all-empty':>11}",
        f"{'challenge score (mean Dice)':34}{summary['challenge_score']:>9.4f}{summary['all_empty_score']:>11.4f}",
        f"{'mean Dice on positive images':34}{summary['mean_dice_on_positive_images']:>9.4f}{0.0:>11.4f}",
        "",
        f"{'presence calls':22}{'truth +':>9}{'truth -':>9}",
        f"{'  called positive':22}{confusion['true_positive']:>9}{confusion['false_positive']:>9}",
        f"{'  called negative':22}{confusion['false_negative']:>9}{confusion['true_negative']:>9}",
        (f"sensitivity {summary['sensitivity']:.3f}   specificity {summary['specificity']:.3f}   "
         f"ROC AUC of the score {summary['roc_auc']:.3f}"),
        "",
        *format_operating_points(summary["operating_points"]),
        "",
        *_format_calibration(summary.get("calibration")),
        (f"latency per image (load + inference): mean {latency['mean_s']:.3f} s, "
         f"median {latency['median_s']:.3f} s, 95th percentile {latency['p95_s']:.3f} s; "
         f"model load {latency['model_load_s']:.2f} s"),
    ])


def _format_calibration(calibration: Mapping[str, Any] | None) -> list[str]:
    if calibration is None:
        return ["calibration: none in the model card (the score is not a probability)", ""]
    return [(f"calibrated probability: Brier score {calibration['brier_score']:.4f} (the raw score "
             f"{calibration['brier_score_of_the_raw_score']:.4f}), expected calibration error "
             f"{calibration['expected_calibration_error']:.3f}"), ""]


def _json_safe(value: Any) -> Any:
    """NaN (undefined sensitivity, AUC with one class) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value
