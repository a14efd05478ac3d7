"""Case reports and worklist summaries of review cases, from the cases to the files (the app and
`pneumoviewer report` both call these; call them off the GUI thread: each image is decoded)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from pneumoviewer.errors import CancelCheck, ProgressCallback, raise_if_cancelled
from pneumoviewer.io.dicom import DicomError
from pneumoviewer.io.images import load_radiograph
from pneumoviewer.printing.pages import write_case_reports, write_worklist_report
from pneumoviewer.reports.case_report import CaseReport, build_case_report, report_picture, worklist_rows
from pneumoviewer.reports.model_facts import model_version
from pneumoviewer.review.case import Case

_THUMBNAIL_PX = 208  # twice the printed size, so it stays sharp on paper
_MAX_NOTES = 25  # on the summary's last page; the rest are counted


@dataclass(frozen=True)
class ReportModel:
    """The model whose results the report shows: its card (a dict) and its fingerprint."""

    card: Mapping[str, Any] | None
    fingerprint: str | None


def _pages(cases: Sequence[Case], model: ReportModel, ai_problems: Mapping[str, str],
           progress: ProgressCallback | None, cancel: CancelCheck | None,
           ) -> Iterator[tuple[CaseReport, Image.Image | None, str | None]]:
    for done, case in enumerate(cases):
        raise_if_cancelled(cancel)
        report = build_case_report(case, model.card, model.fingerprint, ai_problems.get(case.image_id))
        picture, problem = _picture(case, report)
        yield report, picture, problem
        if progress is not None:
            progress(done + 1, len(cases))


def _picture(case: Case, report: CaseReport) -> tuple[Image.Image | None, str | None]:
    if case.path is None:
        return None, "the case has no file"
    try:
        return report_picture(report, load_radiograph(case.path).pixels), None
    except DicomError as error:
        return None, error.reason


def save_case_reports(cases: Sequence[Case], path: Path, page_format: str, model: ReportModel,
                      ai_problems: Mapping[str, str] | None = None, progress: ProgressCallback | None = None,
                      cancel: CancelCheck | None = None) -> list[Path]:
    """One page per case into `path` (.pdf; .png: one file per page); the files written."""
    pages = _pages(cases, model, ai_problems or {}, progress, cancel)
    return write_case_reports(Path(path), page_format, len(cases), pages)


def save_worklist_report(cases: Sequence[Case], path: Path, page_format: str, model: ReportModel, title: str,
                         notes: Sequence[str] = (), progress: ProgressCallback | None = None,
                         cancel: CancelCheck | None = None) -> list[Path]:
    """The cases in triage order with thumbnails, statuses and findings; `notes`: what is left out and why."""
    rows = worklist_rows(cases, model.card)
    by_id = {case.display_id: case for case in cases}
    thumbnails = []
    for done, row in enumerate(rows):
        raise_if_cancelled(cancel)
        case = by_id[row.case_id]
        picture, _ = _picture(case, build_case_report(case, model.card, model.fingerprint))
        thumbnails.append(None if picture is None else _thumbnail(picture))
        if progress is not None:
            progress(done + 1, len(rows))
    shown = list(notes[:_MAX_NOTES])
    if len(notes) > _MAX_NOTES:
        shown.append(f"… and {len(notes) - _MAX_NOTES} more (listed where the report was made)")
    if not cases:
        shown.insert(0, "No readable image: there is no case to list.")
    version = model_version(model.card, model.fingerprint)
    subtitle = f"{len(cases)} case(s) in triage order (highest AI score first); {version}"
    return write_worklist_report(Path(path), page_format, f"Worklist summary: {title}", subtitle, rows, thumbnails,
                                 shown)


def _thumbnail(picture: Image.Image) -> Image.Image:
    small = picture.copy()
    small.thumbnail((_THUMBNAIL_PX, _THUMBNAIL_PX), Image.Resampling.LANCZOS)
    return small
