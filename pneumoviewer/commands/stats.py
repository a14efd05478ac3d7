"""`pneumoviewer stats`: what a folder of studies holds, as PNG plots and CSV (the app's Statistics dock).

Ages, sexes, views, the AI's calls (stored results of the model, none computed here), review
statuses, lesion areas and pixel spacings; with --labels, the labelled positives and the labels'
lesion areas. Nothing that identifies a patient is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail, report

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="dataset statistics of a folder (age, sex, view, AI calls, statuses, lesion areas) as PNG + CSV",
        description="Read the headers under FOLDER (and the review the app autosaved for it, and the AI results "
        "it stored for the model) and write one PNG bar plot per statistic and statistics.csv (plot, bar, "
        "count) into DIR. With --labels, the labelled positives and the labels' lesion areas too.",
    )
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="folder of DICOMs")
    parser.add_argument("--labels", type=Path, metavar="CSV", help="labels CSV in the SIIM-ACR format")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the plots into")
    parser.add_argument("--model", type=Path, help="the model whose stored AI results to count (default: bundled)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.io.annotations import AnnotationError
    from pneumoviewer.io.dicom import DicomError
    from pneumoviewer.model.identity import model_fingerprint
    from pneumoviewer.paths import default_model_path
    from pneumoviewer.reports.dataset_stats import dataset_stats, write_stats
    from pneumoviewer.review.opening import open_studies

    if not args.folder.is_dir():
        return fail(f"{args.folder}: is not a folder")
    try:
        opened = open_studies([args.folder])
    except DicomError as error:
        return fail(error)
    for problem in opened.unreadable:
        report(f"{problem} (not counted)")
    session = opened.session
    try:
        session.restore_predictions(model_fingerprint(args.model or default_model_path()))
        labels, label_areas = _labels(args.labels, session.cases) if args.labels else (None, {})
    except (AnnotationError, OSError) as error:
        session.close()
        return fail(str(error))
    areas = label_areas if args.labels else {case.image_id: _area_cm2(case) for case in session.cases}
    stats = dataset_stats(session.cases, areas, labels)
    try:
        written = write_stats(stats, args.out)
    except OSError as error:
        return fail(f"{error.filename or args.out}: could not be written ({error.strerror or error})")
    finally:
        session.close()
    for note in stats.notes:
        print(note)
    print(f"{stats.cases} image(s); {len(opened.unreadable)} not counted; written to {args.out}: "
          f"{', '.join(path.name for path in written)}")
    return 0


def _area_cm2(case) -> float | None:
    """The worklist's rule: the reader's mask once reviewed or drawn, otherwise the AI's."""
    stats = case.lesions() if case.status.is_done or case.has_mask_pixels else case.ai_lesions()
    return None if stats is None else stats.area_cm2


def _labels(path: Path, cases) -> tuple[dict[str, bool], dict[str, float | None]]:
    """Per case with a label row: positive or not, and the labelled lesion area in cm²."""
    from pneumoviewer.io.annotations import read_annotation_rows
    from pneumoviewer.io.rle import RleError, decode_rows
    from pneumoviewer.review.case import lesion_stats

    rows: dict[str, list[str]] = {}
    for image_id, encoded in read_annotation_rows(path):
        rows.setdefault(image_id, []).append(encoded)
    labels, areas = {}, {}
    for case in cases:
        if case.image_id not in rows:
            continue
        try:
            mask = decode_rows(rows[case.image_id], case.shape)
        except RleError as error:
            report(f"{path}: the label of {case.display_id} does not fit its image ({error.reason}); not counted")
            continue
        labels[case.image_id] = bool(mask.any())
        areas[case.image_id] = lesion_stats(mask, case.pixel_spacing_mm).area_cm2 if mask.any() else None
    return labels, areas
