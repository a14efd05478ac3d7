"""`pneumoviewer predict`: masks in the challenge CSV format, triage scores, optional CAM/overlay PNGs and
DICOM Segmentations of the AI's masks (algorithm name and version = the model's fingerprint)."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumoviewer.commands import fail, report
from pneumoviewer.commands._settings import add_setting_arguments, setting_overrides
from pneumoviewer.errors import FileProblem

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers
    from pneumoviewer.commands._batch import Predicted
    from pneumoviewer.io.rle import RleConvention
    from pneumoviewer.review.case import LesionStats

# call: THE challenge call (a lesion marked); triage: the triage flag at the card's triage point;
# probability: the calibrated probability of pneumothorax (empty when the model card has no calibration).
SCORE_COLUMNS = ("ImageId", "score", "probability", "call", "triage", "lesions", "area_px", "area_mm2", "file")


@dataclass(frozen=True)
class ImageOutcome:
    """What is kept per image: small enough for tens of thousands of images (no pixel arrays)."""

    image_id: str
    path: Path
    lesions: list[str]  # RLE, one per connected region; ["-1"] when negative
    score: float
    positive: bool  # the model's challenge call (`Prediction.positive`)
    flagged: bool  # the triage call (`Prediction.flagged`)
    probability: float | None  # `Prediction.pneumothorax_probability`; None when the model is not calibrated
    stats: LesionStats


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict pneumothorax masks and triage scores for radiographs, headless",
        description="Run the model on DICOM files or folders (searched recursively; PNG/JPEG files may be "
        "named directly). Writes the masks in the SIIM-ACR CSV format (ImageId = SOPInstanceUID, one row "
        "per lesion, -1 = none) and the triage scores, highest first, with both calls: the challenge call "
        "(a lesion marked: the masks) and the triage flag (read first; chosen for sensitivity). Unreadable "
        "files are reported and skipped; the exit status is non-zero only when nothing could be predicted.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="DICOM/PNG/JPEG files or folders")
    parser.add_argument("--out", type=Path, required=True, help="masks CSV to write (ImageId,EncodedPixels)")
    parser.add_argument("--model", type=Path, help="model weights (.safetensors with its .json card; default: bundled)")
    parser.add_argument("--rle", choices=("relative", "absolute"), default="relative",
                        help="RLE convention: the challenge's relative starts (default) or 1-based absolute starts")
    parser.add_argument("--scores", type=Path,
                        help="scores CSV (" + ",".join(SCORE_COLUMNS) + "; default: OUT-scores.csv)")
    parser.add_argument("--cam-dir", type=Path, help="write each image's Grad-CAM heat as a grey PNG here")
    parser.add_argument("--overlay-dir", type=Path, help="write each image with mask outline and heat as a PNG here")
    parser.add_argument("--seg-dir", type=Path, metavar="DIR",
                        help="write each DICOM image's AI mask as a DICOM Segmentation here (<id>.seg.dcm; "
                        "an empty segment when negative)")
    add_setting_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.io.rle import RleConvention

    try:
        overrides = setting_overrides(args)
    except ValueError as error:
        return fail(str(error), status=2)
    return _predict(args.paths, args.out, model=args.model, convention=RleConvention(args.rle),
                    scores=args.scores, cam_dir=args.cam_dir, overlay_dir=args.overlay_dir, overrides=overrides,
                    seg_dir=args.seg_dir)


def _predict(
    paths: Sequence[Path],
    out: Path,
    model: Path | None,
    convention: RleConvention,
    scores: Path | None,
    cam_dir: Path | None,
    overlay_dir: Path | None,
    overrides: Mapping[str, Any],
    seg_dir: Path | None = None,
) -> int:
    """The whole `predict` command; returns the exit status (non-zero only if nothing was predicted)."""
    from tqdm import tqdm

    from pneumoviewer.commands._batch import (
        Predicted,
        collect_images,
        latency_summary,
        open_predictor,
        predict_files,
        request_settings,
    )
    from pneumoviewer.io.annotations import write_annotation_rows
    from pneumoviewer.io.atomic import atomic_write_text
    from pneumoviewer.model.checkpoint import CheckpointError

    try:
        predictor = open_predictor(model)
        settings = request_settings(predictor, overrides)
    except CheckpointError as error:
        return fail(str(error))
    except ValueError as error:
        return fail(f"settings: {error}")
    segs = _SegWriter(seg_dir, predictor.checkpoint) if seg_dir is not None else None
    files, skipped = collect_images(paths)
    for problem in skipped:
        report(problem)
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
                result = FileProblem(result.path, f"same ImageId as {first_path[result.image_id]}; not predicted twice")
            if isinstance(result, FileProblem):
                skipped.append(result)
                report(result, progress)
                continue
            first_path[result.image_id] = result.path
            outcomes.append(_outcome(result, convention, calibrated=predictor.calibration is not None))
            latencies.append(sum(v for k, v in result.timings.items() if k != "cam"))
            try:
                _write_pictures(result, cam_dir, overlay_dir)
            except OSError as error:  # the prediction still counts; only its picture is missing
                report(f"{error.filename}: picture not written ({error.strerror})", progress)
            if segs is not None:
                seg_problem = segs.write(result)
                if seg_problem is not None:
                    report(seg_problem, progress)
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
    positives = sum(outcome.positive for outcome in outcomes)
    flagged = sum(outcome.flagged for outcome in outcomes)
    latency = latency_summary(latencies)
    triage = predictor.operating_points.triage
    print(
        f"{'Interrupted: partial results. ' if interrupted else ''}"
        f"Predicted {len(outcomes)} image(s): {positives} positive, {len(outcomes) - positives} negative "
        f"(challenge call, masks); {flagged} flagged for triage (score >= {triage.threshold:.3f}"
        + (f": {triage.label()} out-of-fold" if predictor.operating_points.measured else ": the challenge threshold")
        + f"); {len(skipped)} skipped. Mean {latency['mean_s']:.2f} s/image (load + inference).\n"
        f"Masks: {out}\nScores (highest first): {scores}"
        + (f"\nGrad-CAM: {cam_dir}" if cam_dir else "")
        + (f"\nOverlays: {overlay_dir}" if overlay_dir else "")
        + (f"\nDICOM SEGs: {segs.written} in {seg_dir}" if segs is not None else "")
    )
    return 130 if interrupted else 0


def _outcome(result: Predicted, convention: RleConvention, calibrated: bool) -> ImageOutcome:
    from pneumoviewer.io.rle import encode_lesions
    from pneumoviewer.review.case import lesion_stats

    prediction = result.prediction
    return ImageOutcome(
        result.image_id, result.path, encode_lesions(prediction.mask, convention), prediction.score,
        prediction.positive, prediction.flagged, prediction.pneumothorax_probability if calibrated else None,
        lesion_stats(prediction.mask, result.image.metadata.pixel_spacing_mm),
    )


def _write_pictures(result: Predicted, cam_dir: Path | None, overlay_dir: Path | None) -> None:
    from pneumoviewer.io.overlay import safe_file_stem, write_heat_png, write_overlay_png

    stem = safe_file_stem(result.image_id)
    if cam_dir is not None and result.heat is not None:
        write_heat_png(cam_dir / f"{stem}.png", result.heat)
    if overlay_dir is not None:
        call = "pneumothorax" if result.prediction.positive else "no pneumothorax"
        caption = f"AI score {result.prediction.score:.2f}: {call}\n{result.image_id}"
        write_overlay_png(overlay_dir / f"{stem}.png", result.image.pixels, result.prediction.mask, result.heat,
                          caption)


class _SegWriter:
    """One DICOM Segmentation per predicted DICOM image, naming the model by its fingerprint."""

    def __init__(self, folder: Path, checkpoint: Path) -> None:
        from pneumoviewer.io.dicom_seg import AI_ALGORITHM_NAME, Algorithm
        from pneumoviewer.model.identity import model_fingerprint

        self.folder = folder
        self.algorithm = Algorithm(AI_ALGORITHM_NAME, model_fingerprint(checkpoint))
        self.written = 0

    def write(self, result: Predicted) -> FileProblem | None:
        """Write `result`'s SEG; the problem (the prediction itself still counts), or None."""
        from pneumoviewer.io.dicom import is_dicom_file
        from pneumoviewer.io.dicom_derived import DicomOutputError
        from pneumoviewer.io.dicom_seg import write_seg
        from pneumoviewer.io.overlay import safe_file_stem

        if not is_dicom_file(result.path):
            return FileProblem(result.path, "not a DICOM image: no DICOM Segmentation can refer to it")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            written = write_seg(self.folder / f"{safe_file_stem(result.image_id)}.seg.dcm", result.path,
                                result.prediction.mask, self.algorithm)
        except DicomOutputError as error:
            return error
        except OSError as error:
            return FileProblem(self.folder, f"cannot create the folder ({error.strerror or error})")
        self.written += 1
        if written.generated_uids:
            return FileProblem(result.path, f"{', '.join(written.generated_uids)} missing or invalid: "
                               "generated for its SEG (written)")
        return None


def _scores_csv(outcomes: Sequence[ImageOutcome]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SCORE_COLUMNS)
    for outcome in sorted(outcomes, key=lambda o: -o.score):
        area_mm2 = outcome.stats.area_mm2
        writer.writerow([
            outcome.image_id, f"{outcome.score:.4f}",
            "" if outcome.probability is None else f"{outcome.probability:.3f}",
            "positive" if outcome.positive else "negative", "flagged" if outcome.flagged else "not flagged",
            outcome.stats.count, outcome.stats.area_px, "" if area_mm2 is None else f"{area_mm2:.1f}",
            str(outcome.path),
        ])
    return buffer.getvalue()
