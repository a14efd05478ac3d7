"""`pneumoviewer predict`: masks in the challenge CSV format, triage scores, optional CAM/overlay PNGs."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pneumoviewer.io.annotations import write_annotation_rows
from pneumoviewer.io.atomic import atomic_write_text
from pneumoviewer.io.rle import EMPTY, RleConvention, encode_lesions
from pneumoviewer.model.batch import (
    Predicted,
    Skipped,
    collect_images,
    fail,
    latency_summary,
    open_predictor,
    predict_files,
    report_skipped,
    request_settings,
)
from pneumoviewer.model.checkpoint import CheckpointError
from pneumoviewer.model.overlay import safe_file_stem, write_heat_png, write_overlay_png

SCORE_COLUMNS = ("ImageId", "score", "call", "lesions", "area_px", "area_mm2", "file")


@dataclass(frozen=True)
class ImageOutcome:
    """What is kept per image: small enough for tens of thousands of images (no pixel arrays)."""

    image_id: str
    path: Path
    lesions: list[str]  # RLE, one per connected region; ["-1"] when negative
    score: float
    area_px: int
    area_mm2: float | None


def run_predict(
    paths: Sequence[Path],
    out: Path,
    model: Path | None = None,
    convention: RleConvention = RleConvention.RELATIVE,
    scores: Path | None = None,
    cam_dir: Path | None = None,
    overlay_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> int:
    """The whole `predict` command; returns the exit status (non-zero only if nothing was predicted)."""
    try:
        predictor = open_predictor(model)
        settings = request_settings(predictor, overrides or {})
    except CheckpointError as error:
        return fail(str(error))
    except ValueError as error:
        return fail(f"settings: {error}")
    files, skipped = collect_images(paths)
    for problem in skipped:
        report_skipped(problem)
    if not files:
        return fail("no readable images found in " + ", ".join(map(str, paths)))
    scores = scores if scores is not None else out.with_name(out.stem + "-scores.csv")
    outcomes: list[ImageOutcome] = []
    first_path: dict[str, Path] = {}
    latencies: list[float] = []
    interrupted = False
    progress = tqdm(total=len(files), unit="image", desc="predict", file=sys.stderr, dynamic_ncols=True)
    try:
        for result in predict_files(predictor, files, settings, with_cam=bool(cam_dir or overlay_dir)):
            progress.update()
            if isinstance(result, Predicted) and result.image_id in first_path:
                result = Skipped(result.path, f"same ImageId as {first_path[result.image_id]}; not predicted twice")
            if isinstance(result, Skipped):
                skipped.append(result)
                report_skipped(result, progress)
                continue
            first_path[result.image_id] = result.path
            outcomes.append(_outcome(result, convention))
            latencies.append(sum(v for k, v in result.timings.items() if k != "cam"))
            try:
                _write_pictures(result, cam_dir, overlay_dir)
            except OSError as error:  # the prediction still counts; only its picture is missing
                progress.write(f"pneumoviewer: {error.filename}: picture not written ({error.strerror})", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
    if not outcomes:
        return fail("no image could be predicted")
    try:
        for folder in {out.parent, scores.parent}:
            folder.mkdir(parents=True, exist_ok=True)
        write_annotation_rows(out, ((outcome.image_id, lesion) for outcome in outcomes for lesion in outcome.lesions))
        atomic_write_text(scores, _scores_csv(outcomes))
    except OSError as error:
        return fail(f"{error.filename or out}: could not be written ({error.strerror or error})")
    positives = sum(outcome.lesions != [EMPTY] for outcome in outcomes)
    latency = latency_summary(latencies)
    print(
        f"{'Interrupted: partial results. ' if interrupted else ''}"
        f"Predicted {len(outcomes)} image(s): {positives} positive, {len(outcomes) - positives} negative; "
        f"{len(skipped)} skipped. Mean {latency['mean_s']:.2f} s/image (load + inference).\n"
        f"Masks: {out}\nScores (highest first): {scores}"
        + (f"\nGrad-CAM: {cam_dir}" if cam_dir else "")
        + (f"\nOverlays: {overlay_dir}" if overlay_dir else "")
    )
    return 130 if interrupted else 0


def _outcome(result: Predicted, convention: RleConvention) -> ImageOutcome:
    mask = result.prediction.mask
    area_px = int(mask.sum())
    spacing = result.image.metadata.pixel_spacing_mm
    area_mm2 = area_px * spacing[0] * spacing[1] if spacing is not None else None
    return ImageOutcome(
        result.image_id, result.path, encode_lesions(mask, convention),
        result.prediction.score, area_px, area_mm2,
    )


def _write_pictures(result: Predicted, cam_dir: Path | None, overlay_dir: Path | None) -> None:
    stem = safe_file_stem(result.image_id)
    if cam_dir is not None and result.heat is not None:
        write_heat_png(cam_dir / f"{stem}.png", result.heat)
    if overlay_dir is not None:
        call = "pneumothorax" if result.prediction.mask.any() else "no pneumothorax"
        caption = f"AI score {result.prediction.score:.2f}: {call}\n{result.image_id}"
        write_overlay_png(overlay_dir / f"{stem}.png", result.image.pixels, result.prediction.mask, result.heat, caption)


def _scores_csv(outcomes: Sequence[ImageOutcome]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SCORE_COLUMNS)
    for outcome in sorted(outcomes, key=lambda o: -o.score):
        positive = outcome.lesions != [EMPTY]
        writer.writerow([
            outcome.image_id, f"{outcome.score:.4f}", "positive" if positive else "negative",
            len(outcome.lesions) if positive else 0, outcome.area_px,
            "" if outcome.area_mm2 is None else f"{outcome.area_mm2:.1f}", str(outcome.path),
        ])
    return buffer.getvalue()
