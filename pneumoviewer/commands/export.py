"""`pneumoviewer export PATH…`: the reviewed annotations of what the app opened (a folder or a selection of
files), as the app autosaved them, to CSV/PNGs and DICOM SEG / overlay objects."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail, report

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export the reviewed annotations of a folder or selection (as saved by the app) to a SIIM-ACR CSV "
        "and/or PNG masks",
        description="Read the review session the app autosaved for PATH (a folder, or the same files and folders "
        "that were opened together, in any order: statuses and corrected masks) and "
        "write it as a challenge-format CSV (ImageId, EncodedPixels; one row per lesion, -1 = none or rejected) "
        "and/or one 0/255 PNG mask per image, and/or one DICOM Segmentation and one burned-in overlay (Secondary "
        "Capture) per image for a PACS (rejected cases: an empty segment). Reviewed cases only, unless --all.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="the folder of DICOMs that was reviewed, or the files and folders opened together")
    parser.add_argument("--out", type=Path, help="annotation CSV to write")
    parser.add_argument("--pngs", type=Path, metavar="DIR", help="folder for one PNG mask per image")
    parser.add_argument("--seg-dir", type=Path, metavar="DIR",
                        help="folder for one DICOM Segmentation per image (<id>.seg.dcm; the reader's mask)")
    parser.add_argument("--overlay-dir", type=Path, metavar="DIR",
                        help="folder for one burned-in overlay per image (<id>.overlay.dcm, DICOM Secondary Capture)")
    parser.add_argument("--model", type=Path,
                        help="the model whose masks were accepted: named in the SEGs and captions (default: bundled)")
    parser.add_argument("--rle", choices=("relative", "absolute"), default="relative",
                        help="RLE convention: the challenge's relative starts (default) or 1-based absolute starts")
    parser.add_argument("--all", action="store_true", help="include unreviewed cases with their current mask")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.io.dicom import DicomError
    from pneumoviewer.io.rle import RleConvention
    from pneumoviewer.progress import progress_bar
    from pneumoviewer.review.export import (
        ExportError,
        ExportScope,
        cases_to_export,
        export_csv,
        export_dicom,
        export_pngs,
    )
    from pneumoviewer.review.opening import open_studies

    if args.out is None and args.pngs is None and args.seg_dir is None and args.overlay_dir is None:
        return fail("export: give --out CSV, --pngs DIR, --seg-dir DIR and/or --overlay-dir DIR", status=2)
    try:
        opened = open_studies(args.paths)
    except DicomError as error:
        return fail(error)
    for problem in opened.unreadable:
        report(f"{problem} (skipped)")
    session = opened.session
    for restore_problem in session.restore_problems:
        report(str(restore_problem))
    scope = ExportScope.ALL if args.all else ExportScope.REVIEWED
    counts = ", ".join(f"{count} {status.value}" for status, count in session.status_counts().items() if count)
    print(f"{opened.title}: {len(session)} images ({counts or 'none'})")
    try:
        if args.out is not None:
            with progress_bar(len(cases_to_export(session.cases, scope)), "CSV") as bar:
                summary = export_csv(session.cases, args.out, RleConvention(args.rle), scope,
                                     progress=lambda done, _total: bar.update(done - bar.n))
            print(f"{summary.path}: {summary.images} images, {summary.positive} with pneumothorax ({args.rle} RLE)")
        if args.pngs is not None:
            summary = export_pngs(session.cases, args.pngs, scope)
            print(f"{summary.path}: {summary.images} PNG masks, {summary.positive} with pneumothorax")
        if args.seg_dir is not None or args.overlay_dir is not None:
            version = _model_version(args.model)
            with progress_bar(len(cases_to_export(session.cases, scope)), "DICOM") as bar:
                summary = export_dicom(session.cases, args.seg_dir, args.overlay_dir, version, scope,
                                       progress=lambda done, _total: bar.update(done - bar.n))
            for image_id in summary.skipped:
                report(f"{image_id}: not a DICOM image, no DICOM object can refer to it (skipped)")
            for image_id in summary.generated_uids:
                report(f"{image_id}: its Study/Series/SOP Instance UIDs are missing or invalid: generated for its "
                       "DICOM objects (written)")
            written = " and ".join(f"{kind} in {folder}" for kind, folder in
                                   (("SEGs", args.seg_dir), ("overlays", args.overlay_dir)) if folder is not None)
            print(f"{summary.images} images ({summary.positive} with pneumothorax): {written}")
    except ExportError as error:
        return fail(str(error))
    return 0


def _model_version(checkpoint: Path | None) -> str | None:
    """The fingerprint of the model the reader worked with; None (the SEGs then say "manual") if unreadable."""
    from pneumoviewer.model.identity import model_fingerprint
    from pneumoviewer.paths import default_model_path

    try:
        return model_fingerprint(checkpoint or default_model_path())
    except OSError as error:
        report(f"{checkpoint or 'bundled model'}: no model version for the DICOM objects ({error.strerror or error})")
        return None
