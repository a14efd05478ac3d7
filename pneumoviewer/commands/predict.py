"""`pneumoviewer predict`: masks in the challenge CSV format, triage scores, optional CAM/overlay PNGs and
DICOM Segmentations of the AI's masks (algorithm name and version = the model's fingerprint)."""

from __future__ import annotations

import argparse
import csv
import heapq
import io
import pickle
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pneumoviewer.commands import fail, report
from pneumoviewer.commands._settings import add_setting_arguments, request_settings, setting_overrides
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
    archive = parser.add_argument_group(
        "archive scale (Dask)",
        "Predict on a Dask cluster: the files are sent in batches to worker processes that each load the model "
        "once, finished batches are journalled beside OUT (OUT.journal/), and the CSVs come out byte-identical to "
        "a single-process run. Workers of an existing cluster need this package and the files' paths.",
    )
    archive.add_argument("--workers", type=_positive_int, metavar="N",
                         help="start a local Dask cluster of N worker processes (one model each)")
    archive.add_argument("--scheduler", metavar="ADDRESS",
                         help="use an existing Dask cluster (e.g. tcp://host:8786) instead of a local one")
    archive.add_argument("--resume", action="store_true",
                         help="finish an interrupted --workers/--scheduler run from its journal (same paths, "
                         "model and settings; the number of workers may change)")
    archive.add_argument("--batch-size", type=_positive_int, default=32, metavar="FILES",
                         help="files per task sent to a worker (default 32)")
    add_setting_arguments(parser)
    parser.set_defaults(handler=run)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.io.rle import RleConvention

    try:
        overrides = setting_overrides(args)
    except ValueError as error:
        return fail(str(error), status=2)
    if args.workers is not None or args.scheduler is not None or args.resume:
        from pneumoviewer.commands._archive import predict_on_cluster

        return predict_on_cluster(args, RleConvention(args.rle), overrides)
    return _predict(args.paths, args.out, model=args.model, convention=RleConvention(args.rle),
                    scores=args.scores, cam_dir=args.cam_dir, overlay_dir=args.overlay_dir, overrides=overrides,
                    seg_dir=args.seg_dir, score_unvalidated=args.score_unvalidated)


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
    score_unvalidated: bool = False,
) -> int:
    """The whole `predict` command; returns the exit status (non-zero only if nothing was predicted)."""
    from pneumoviewer.commands._batch import (
        Predicted,
        collect_images,
        latency_summary,
        open_predictor,
        predict_files,
    )
    from pneumoviewer.model.card import CheckpointError
    from pneumoviewer.progress import progress_bar

    try:
        predictor = open_predictor(model)
        settings = request_settings(predictor.card.settings, overrides)
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
    scores = scores if scores is not None else default_scores_path(out)
    outcomes: list[ImageOutcome] = []
    first_path: dict[str, Path] = {}
    latencies: list[float] = []
    interrupted = False
    progress = progress_bar(len(files), "predict")
    try:
        for result in predict_files(predictor, files, settings, with_cam=bool(cam_dir or overlay_dir),
                                    score_unvalidated=score_unvalidated):
            progress.update()
            if isinstance(result, Predicted) and result.image_id in first_path:
                result = FileProblem(result.path, f"same ImageId as {first_path[result.image_id]}; not predicted twice")
            if isinstance(result, FileProblem):
                skipped.append(result)
                report(result, progress)
                continue
            if result.ai_warning:
                report(f"{result.path}: {result.ai_warning}; scored on request (--score-unvalidated)", progress)
            first_path[result.image_id] = result.path
            outcomes.append(image_outcome(result, convention, calibrated=predictor.calibration is not None))
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
        _, positives, flagged = write_outputs(out, scores, outcomes)
    except OSError as error:
        return fail(f"{error.filename or out}: could not be written ({error.strerror or error})")
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


def image_outcome(result: Predicted, convention: RleConvention, calibrated: bool) -> ImageOutcome:
    """The row kept of one prediction (a Dask worker makes it too, so both runs write the same bytes)."""
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
    from pneumoviewer.review.lesions import LesionSource, find_lesions, lesion_labels, patient_right_on_image_left

    stem = safe_file_stem(result.image_id)
    if cam_dir is not None and result.heat is not None:
        write_heat_png(cam_dir / f"{stem}.png", result.heat)
    if overlay_dir is not None:
        call = "pneumothorax" if result.prediction.positive else "no pneumothorax"
        caption = f"AI score {result.prediction.score:.2f}: {call}\n{result.image_id}"
        meta = result.image.metadata
        lesions = find_lesions(result.prediction.mask, meta.pixel_spacing_mm, LesionSource.AI,
                               patient_right_on_image_left(meta.patient_orientation, meta.view_position))
        write_overlay_png(overlay_dir / f"{stem}.png", result.image.pixels, result.prediction.mask, result.heat,
                          caption, lesion_labels(lesions, f"score {result.prediction.score:.2f}"))


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


def default_scores_path(out: Path) -> Path:
    """Where the scores CSV goes when --scores is not given: beside the masks, OUT-scores.csv."""
    return out.with_name(out.stem + "-scores.csv")


def write_outputs(out: Path, scores: Path, outcomes: Iterable[ImageOutcome]) -> tuple[int, int, int]:
    """Write the masks CSV (file order) and the scores CSV (highest first, ties in file order), both
    atomically and streamed: `outcomes` may be a generator over a million images. Returns (images,
    positive by the challenge call, flagged for triage). Raises OSError."""
    from pneumoviewer.io.annotations import write_annotation_rows
    from pneumoviewer.io.atomic import atomic_write_chunks

    order = _ScoreOrder()
    positives = flagged = 0

    def mask_rows() -> Iterator[tuple[str, str]]:
        nonlocal positives, flagged
        for outcome in outcomes:
            order.add(outcome.score, _score_line(outcome))
            positives += outcome.positive
            flagged += outcome.flagged
            for lesion in outcome.lesions:
                yield outcome.image_id, lesion

    write_annotation_rows(out, mask_rows())
    atomic_write_chunks(scores, (line.encode("utf-8") for line in order.lines(_score_line_of(SCORE_COLUMNS))))
    return order.count, positives, flagged


def _score_line(outcome: ImageOutcome) -> str:
    area_mm2 = outcome.stats.area_mm2
    return _score_line_of([
        outcome.image_id, f"{outcome.score:.4f}", "" if outcome.probability is None else f"{outcome.probability:.3f}",
        "positive" if outcome.positive else "negative", "flagged" if outcome.flagged else "not flagged",
        outcome.stats.count, outcome.stats.area_px, "" if area_mm2 is None else f"{area_mm2:.1f}",
        str(outcome.path),
    ])


def _score_line_of(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


class _ScoreOrder:
    """Score lines highest first, ties in the order added (what a stable sort of the list gives), sorted
    in chunks spilled to temporary files and merged: a million rows need a chunk's memory, not theirs."""

    def __init__(self, chunk_rows: int = 100_000) -> None:
        self.chunk_rows = chunk_rows
        self.count = 0
        self._chunk: list[tuple[float, int, str]] = []
        self._spills: list[IO[bytes]] = []

    def add(self, score: float, line: str) -> None:
        self._chunk.append((-score, self.count, line))
        self.count += 1
        if len(self._chunk) >= self.chunk_rows:
            self._spill()

    def _spill(self) -> None:
        spill = tempfile.TemporaryFile()  # noqa: SIM115 (read back and closed by `lines`)
        for record in sorted(self._chunk):
            pickle.dump(record, spill, protocol=pickle.HIGHEST_PROTOCOL)
        spill.seek(0)
        self._spills.append(spill)
        self._chunk = []

    def lines(self, header: str) -> Iterator[str]:
        yield header
        if not self._spills:
            yield from (line for _, _, line in sorted(self._chunk))
            return
        self._spill()
        try:
            yield from (line for _, _, line in heapq.merge(*map(_records, self._spills)))
        finally:
            for spill in self._spills:
                spill.close()


def _records(spill: IO[bytes]) -> Iterator[tuple[float, int, str]]:
    while True:
        try:
            yield pickle.load(spill)  # noqa: S301 (our own temporary file, written just now)
        except EOFError:
            return
