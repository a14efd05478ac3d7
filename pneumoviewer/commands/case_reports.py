"""`pneumoviewer report` (this module is not `report.py`: `commands.report` is the problem printer):
printable case reports and a worklist summary of DICOMs, as PDF or PNG.

The cases are opened as the app opens them (`open_studies`: the reader's autosaved statuses and
masks come with them); images without an AI result of this model are predicted first (results the
app stored for this model are reused). Pages are painted with Qt's own PDF engine
(`pneumoviewer.printing`), offscreen: no window and no display needed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumoviewer.commands import fail, report

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers
    from pneumoviewer.review.session import ReviewSession


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="case reports (one page per case) and a worklist summary as PDF or PNG",
        description="Open PATH (DICOM files or a folder, with the review the app autosaved for it), run the AI "
        "where it has no result yet, and write one page per case (the radiograph with the lesions outlined, "
        "boxed and labelled; the findings; header facts without patient identifiers; the review status; the "
        "model version) to DIR/case-reports.pdf, and the cases in triage order with thumbnails to "
        "DIR/worklist-summary.pdf. --format png writes one PNG per page instead.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="DICOM files or a folder of DICOMs")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder to write the reports into")
    parser.add_argument("--format", choices=("pdf", "png"), default="pdf", help="pdf (default) or png pages")
    parser.add_argument("--model", type=Path, help="model weights (.safetensors with its .json card; default: bundled)")
    parser.add_argument("--no-ai", action="store_true", help="report the stored AI results only; run no model")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.io.dicom import DicomError
    from pneumoviewer.review.opening import open_studies

    try:
        opened = open_studies(args.paths)
    except DicomError as error:
        return fail(error)
    notes = [f"{problem} (not in the report)" for problem in opened.unreadable]
    for note in notes:
        report(note)
    session = opened.session
    try:
        model, ai_problems = _ai_results(session, args.model, args.no_ai)
    except (DicomError, OSError) as error:  # CheckpointError is a FileProblem; OSError: the card is unreadable
        return fail(str(error))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # pages are painted, never shown
    from PySide6.QtWidgets import QApplication

    from pneumoviewer.printing.reports import save_case_reports, save_worklist_report

    # Painting text needs an application object (fonts). A QApplication rather than the bare QtGui one:
    # in a process that later opens the window (tests), Qt allows one application object only.
    _application = QApplication.instance() or QApplication(["pneumoviewer-report"])  # noqa: F841
    cases = session.worklist()
    try:
        written = []
        if cases:
            written += save_case_reports(cases, args.out / f"case-reports.{args.format}", args.format, model,
                                         ai_problems)
        else:
            report("no readable image: no case report (the worklist summary says why)")
        written += save_worklist_report(cases, args.out / f"worklist-summary.{args.format}", args.format, model,
                                        opened.title, [*ai_problems_notes(ai_problems), *notes])
    except OSError as error:
        return fail(f"{args.out}: the report could not be written ({error})")
    finally:
        session.close()
    for path in written:
        print(path)
    return 0


def ai_problems_notes(ai_problems: dict[str, str]) -> list[str]:
    return [f"{image_id}: no AI result ({reason})" for image_id, reason in ai_problems.items()]


def _ai_results(session: ReviewSession, model_path: Path | None, no_ai: bool):
    """Stored results of the model for the session's cases, then the network for the others.

    Returns the report's model facts and, per image without a result, why."""
    import json

    from pneumoviewer.model.identity import checkpoint_paths, model_fingerprint
    from pneumoviewer.paths import default_model_path
    from pneumoviewer.printing.reports import ReportModel

    checkpoint = model_path or default_model_path()
    fingerprint = model_fingerprint(checkpoint)
    card = json.loads(checkpoint_paths(checkpoint)[1].read_text(encoding="utf-8"))
    restored = session.restore_predictions(fingerprint)
    missing = [case for case in session.cases if case.image_id not in restored]
    problems: dict[str, str] = {}
    if no_ai:
        problems = {case.image_id: "--no-ai: no stored result of this model" for case in missing}
    elif missing:
        problems = _predict(session, checkpoint, missing)
    return ReportModel(card, fingerprint), problems


def _predict(session: ReviewSession, checkpoint: Path, cases: list) -> dict[str, str]:
    from pneumoviewer.commands._batch import ImageFile, open_predictor, predict_files
    from pneumoviewer.errors import FileProblem
    from pneumoviewer.progress import progress_bar

    predictor = open_predictor(checkpoint)
    files = [ImageFile(case.path, case.image_id) for case in cases if case.path is not None]
    by_path = {case.path: case for case in cases}
    problems: dict[str, str] = {}
    with progress_bar(len(files), "AI") as progress:
        for result in predict_files(predictor, files, predictor.settings):
            progress.update()
            if isinstance(result, FileProblem):
                problems[by_path[result.path].image_id] = result.reason
                report(result, progress)
            else:
                prediction: Any = result.prediction  # a frozen Prediction; AiResult's protocol reads it only
                session.apply_prediction(by_path[result.path].image_id, prediction)
    return problems
