"""What a case report and a worklist summary say, as plain data (the pages are painted by `printing`).

Only what identifies no one goes on paper: the anonymised case number ("Case 0007"), age, sex, view,
modality, body part, pixel spacing and image size. Names, IDs, birth dates, study dates and UIDs
stay in the DICOM headers. Every part that cannot be given (no AI result, no pixel spacing, an
unreadable image, a card without a triage point) is replaced by a sentence saying why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from pneumoviewer.io.overlay import overlay_picture
from pneumoviewer.model.operating_points import flagged
from pneumoviewer.reports.model_facts import (
    CHALLENGE,
    NO_TRIAGE_POINT,
    TRIAGE,
    calibrated_probability,
    model_version,
    operating_points,
    point_figures,
)
from pneumoviewer.review.case import Case, ReviewStatus
from pneumoviewer.review.lesions import Lesion, case_lesions, lesion_labels

FOOTER = "PneumoViewer: research tool, not a medical device. AI findings must be confirmed by a qualified reader."
_AGE_UNITS = {"M": "months", "W": "weeks", "D": "days"}  # DICOM Age String units besides Y
STATUS_WORDS = {
    ReviewStatus.UNREVIEWED: "not reviewed yet",
    ReviewStatus.ACCEPTED: "reviewed: AI result accepted",
    ReviewStatus.CORRECTED: "reviewed: mask corrected by the reader",
    ReviewStatus.REJECTED: "reviewed: no pneumothorax (AI result rejected)",
}


@dataclass(frozen=True)
class CaseReport:
    case_id: str  # anonymised ("Case 0007")
    facts: list[tuple[str, str]]  # header facts that identify no one
    findings: list[tuple[str, str]]
    lesions: list[Lesion]  # the lesions the picture labels
    lesions_from: str  # whose mask they are, in words
    status: str
    model: str
    notes: list[str] = field(default_factory=list)  # what is missing, and why
    mask: np.ndarray | None = field(default=None, repr=False)  # the outline drawn on the picture
    ai_note: str | None = None  # the AI lesions' label suffix ("p 0.93" / "score 0.97")


def build_case_report(case: Case, card: Mapping[str, Any] | None, fingerprint: str | None,
                      ai_problem: str | None = None) -> CaseReport:
    """The report of one case; `ai_problem` says why there is no AI result, when there is none."""
    ai, reader = case_lesions(case)
    notes = []
    use_reader = case.status.is_done or case.has_mask_pixels
    if case.status is ReviewStatus.REJECTED:
        lesions, mask, lesions_from = [], None, "the reader (no pneumothorax)"
    elif use_reader:
        lesions, mask, lesions_from = reader, case.mask, "the reader's mask"
    else:
        lesions, mask, lesions_from = ai, case.ai_mask, "the AI's mask (not reviewed)"
    if case.pixel_spacing_mm is None:
        notes.append("The header gives no pixel spacing: areas and extents are in pixels, not cm² and mm.")
    findings, ai_note = _findings(case, card, ai, reader, ai_problem, notes)
    return CaseReport(case.display_id, case_facts(case), findings, lesions, lesions_from,
                      STATUS_WORDS[case.status], model_version(card, fingerprint), notes, mask, ai_note)


def case_facts(case: Case) -> list[tuple[str, str]]:
    """The header facts a report may show (nothing that identifies the patient)."""
    meta = case.metadata
    spacing = case.pixel_spacing_mm
    return [
        ("Age", _age(case.patient_age)),
        ("Sex", case.patient_sex or "not recorded"),
        ("View", case.view_position or "not recorded"),
        ("Modality", (meta.modality if meta else None) or "not recorded"),
        ("Body part", (meta.body_part if meta else None) or "not recorded"),
        ("Pixel spacing", f"{spacing[0]:.3f} × {spacing[1]:.3f} mm" if spacing else "unknown"),
        ("Image size", f"{case.shape[1]} × {case.shape[0]} px"),
    ]


def _age(age: str | None) -> str:
    """The age as recorded ("024Y" -> "24 years"); 90 and over as "90 or over" (an identifier beyond)."""
    if not age:
        return "not recorded"
    digits, unit = age.strip().upper().rstrip("YMWD"), age.strip().upper()[-1:]
    if not digits.isdigit():
        return age
    years = int(digits)
    if unit in ("Y", "") or unit.isdigit():
        return "90 or over" if years >= 90 else f"{years} years"
    return f"{years} {_AGE_UNITS[unit]}"


def _findings(case: Case, card: Mapping[str, Any] | None, ai: list[Lesion], reader: list[Lesion],
              ai_problem: str | None, notes: list[str]) -> tuple[list[tuple[str, str]], str | None]:
    rows: list[tuple[str, str]] = []
    points = operating_points(card)
    if case.ai_score is None:
        rows.append(("AI", f"no result ({ai_problem or 'the AI has not run on this image'})"))
        ai_note = None
    else:
        probability = calibrated_probability(card, case.ai_score)
        if probability is None:
            rows.append(("AI score", f"{case.ai_score:.3f} (not a calibrated probability: the card has no "
                                     "calibration)"))
            ai_note = f"score {case.ai_score:.2f}"
        else:
            rows.append(("Probability of pneumothorax", f"{probability:.0%} (score {case.ai_score:.3f}, calibrated)"))
            ai_note = f"p {probability:.2f}"
        triage = points.get(TRIAGE)
        if triage is not None:
            call = "flagged: read first" if flagged(case.ai_score, triage.threshold) else "not flagged"
            rows.append(("Triage call", f"{call} (threshold {triage.threshold:.3f}{point_figures(triage)})"))
        else:
            notes.append(f"No triage call: {NO_TRIAGE_POINT}.")
        challenge = points.get(CHALLENGE)
        call = "pneumothorax marked" if case.ai_positive else "no pneumothorax marked"
        detail = f" (threshold {challenge.threshold:.3f}{point_figures(challenge)})" if challenge else ""
        rows.append(("AI call (challenge rule)", call + detail))
        rows.append(("AI lesions", _lesion_summary(ai)))
    rows.append(("Reader's lesions", "none (rejected)" if case.status is ReviewStatus.REJECTED
                 else _lesion_summary(reader) if reader else
                 "none drawn" if case.status.is_done else "not reviewed yet"))
    return rows, ai_note


def _lesion_summary(lesions: Sequence[Lesion]) -> str:
    if not lesions:
        return "none"
    areas = ", ".join(f"{lesion.name}: {lesion.area_text()}" for lesion in lesions)
    total_cm2 = [lesion.area_cm2 for lesion in lesions]
    total = f"; total {sum(a for a in total_cm2 if a is not None):.1f} cm²" if None not in total_cm2 else ""
    return f"{len(lesions)} ({areas}{total})"


def report_picture(report: CaseReport, pixels: np.ndarray) -> Image.Image:
    """The radiograph with the reported mask's outline and each lesion's box and label."""
    mask = report.mask if report.mask is not None else np.zeros(pixels.shape, dtype=bool)
    return overlay_picture(pixels, mask, None, report.case_id, lesion_labels(report.lesions, report.ai_note))


@dataclass(frozen=True)
class WorklistRow:
    rank: int
    case_id: str
    status: str
    score: str
    call: str
    lesions: str


def worklist_rows(cases: Sequence[Case], card: Mapping[str, Any] | None) -> list[WorklistRow]:
    """The cases in triage order (highest score first, not yet scored last), one line each."""
    triage = operating_points(card).get(TRIAGE)
    ordered = sorted(cases, key=lambda case: (case.ai_score is None, -(case.ai_score or 0.0), case.display_id))
    rows = []
    for rank, case in enumerate(ordered, start=1):
        if case.ai_score is None:
            score, call = "not scored", ""
        else:
            score = f"{case.ai_score:.3f}"
            call = "pneumothorax marked" if case.ai_positive else "none marked"
            if triage is not None and flagged(case.ai_score, triage.threshold):
                call = f"flagged; {call}"
        ai, reader = case_lesions(case)
        if case.status is ReviewStatus.REJECTED:
            lesions = "none (rejected)"
        elif case.status.is_done or reader:
            lesions = _lesion_summary(reader)
        else:
            lesions = f"AI: {_lesion_summary(ai)}" if case.has_ai_result else ""
        rows.append(WorklistRow(rank, case.display_id, case.status.value, score, call, lesions))
    return rows
