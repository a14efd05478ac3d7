"""What the window says about each case: its header facts, the AI's and the reader's lesions, in words.

Lesion counts and areas are measured once per mask version (labelling a 1024² mask takes
milliseconds, too slow to repeat on every repaint): the AI's on the AI worker, the reader's mask
here after each committed edit; `RowRefresher` brings worklist rows up to date with their cases.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from pneumoviewer.io.ai_scope import ai_scope_warning
from pneumoviewer.ui.actions import SCORE_UNVALIDATED_TEXT
from pneumoviewer.ui.worklist import WorklistModel, WorklistRow

if TYPE_CHECKING:  # the review stack is imported by the workers, after the window is up (start-up time)
    from pneumoviewer.io.dicom import DicomMetadata
    from pneumoviewer.model.calibration import Calibration
    from pneumoviewer.model.operating_points import OperatingPoint, OperatingPoints
    from pneumoviewer.review.case import Case, LesionStats
    from pneumoviewer.review.session import ReviewSession
    from pneumoviewer.ui.model_runner import AiFinding

_ROW_REFRESH_BUDGET_S = 0.008  # worklist rows refreshed per event-loop turn after a bulk change


def format_area(stats: LesionStats | None) -> str:
    if stats is None:
        return ""
    if stats.area_cm2 is not None:
        return f"{stats.area_cm2:.2f} cm² ({stats.area_px:,} px)"
    return f"{stats.area_px:,} px (no pixel spacing)"


def case_fields(case: Case) -> dict[str, str]:
    spacing = case.pixel_spacing_mm
    meta = case.metadata
    return {
        # Zero-width spaces after the dots let a long UID wrap in a narrow panel.
        "Image": case.display_id + "\n" + case.image_id.replace(".", ".\u200b"),
        "Age": case.patient_age or "",
        "Sex": case.patient_sex or "",
        "View": case.view_position or "",
        "Pixel spacing": f"{spacing[0]:.3f} × {spacing[1]:.3f} mm" if spacing else "unknown",
        "Size": f"{case.shape[1]} × {case.shape[0]}",
        "Modality": (meta.modality or "") if meta else "",
        "Study date": _date((meta.study_date or "") if meta else ""),
    }


def _date(value: str) -> str:
    """DICOM dates are YYYYMMDD; show them as YYYY-MM-DD (anything else as stored)."""
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def counter_text(session: ReviewSession | None) -> str:
    if session is None:
        return ""
    counts = {status.value: count for status, count in session.status_counts().items()}
    return (
        f"Done {session.done_count} / {len(session)}  ·  accepted {counts['accepted']}  "
        f"corrected {counts['corrected']}  rejected {counts['rejected']}"
    )


class Findings:
    def __init__(self) -> None:
        self.presence_threshold: float | None = None  # the loaded model's presence threshold (shown with the call)
        self.score_is_presence_head = False
        self.model_problem: str | None = None  # why no model is loaded (then no score will come)
        self.model_names: dict[str | None, str] = {}  # model key -> the version that key is ("site-002 (…)")
        self._result_models: dict[str, str | None] = {}  # image id -> the model key of its AI result
        self.calibration: Calibration | None = None  # the loaded model's (None: its score is no probability)
        self.operating_points: OperatingPoints | None = None  # the loaded model's, from its card
        self.triage_point: OperatingPoint | None = None  # where the worklist's red flag is set now
        self.score_unvalidated = False  # images the AI is not validated for are scored too (the reader asked)
        self._ai_failures: dict[str, str] = {}  # image id -> why the AI could not process it
        self._timings: dict[str, dict[str, float]] = {}
        self._ai_lesions: dict[str, LesionStats] = {}
        self._mask_lesions: dict[str, LesionStats] = {}

    def set_model_card(self, card: dict | None) -> None:
        """The loaded model's threshold, calibration and operating points (a card dict; None: no model)."""
        from pneumoviewer.model.calibration import Calibration
        from pneumoviewer.model.operating_points import OperatingPoints

        settings = (card or {}).get("settings") or {}
        threshold = settings.get("presence_threshold")
        self.presence_threshold = None if threshold is None else float(threshold)
        # Then the score is the presence head's and the call the gate's (postprocess.triage_score): not comparable.
        self.score_is_presence_head = bool(settings.get("triage_by_presence_head", False))
        calibration = (card or {}).get("calibration")  # the card was checked when the model was loaded
        self.calibration = None if calibration is None else Calibration.from_card(calibration)
        self.operating_points = None if card is None else OperatingPoints.from_card(card)

    def choose_triage_point(self, sensitivity: float | None) -> OperatingPoint | None:
        """Set the red flag at the most specific point of the model's curve reaching `sensitivity`
        (None: the card's triage point); returns the point chosen (None before a model is loaded)."""
        points = self.operating_points
        if points is None:
            self.triage_point = None
        elif sensitivity is None or not points.curve:
            self.triage_point = points.triage
        else:
            self.triage_point = points.for_sensitivity(sensitivity)
        return self.triage_point

    def flagged(self, case: Case) -> bool | None:
        """The worklist's red flag: THE triage call (`operating_points.flagged`) at the point chosen."""
        if case.ai_score is None or self.triage_point is None:
            return None
        from pneumoviewer.model.operating_points import flagged  # after the check: asked for every row

        return flagged(case.ai_score, self.triage_point.threshold)

    def probability(self, case: Case) -> float | None:
        """The calibrated probability of pneumothorax; None before the AI ran or for an uncalibrated model."""
        if case.ai_score is None or self.calibration is None:
            return None
        return self.calibration.probability(case.ai_score)

    def clear(self) -> None:
        for cache in (self._timings, self._ai_lesions, self._mask_lesions, self._ai_failures, self._result_models):
            cache.clear()

    def record_failure(self, image_id: str, reason: str) -> None:
        self._ai_failures[image_id] = reason

    def record_prediction(self, image_id: str, finding: AiFinding) -> None:
        self._ai_failures.pop(image_id, None)
        self._timings[image_id] = dict(finding.prediction.timings)
        self._ai_lesions[image_id] = finding.lesions
        self._result_models[image_id] = finding.model_key

    def record_restored(self, image_id: str, lesions: LesionStats, model_key: str | None = None) -> None:
        """An AI result reused from the session store (measured off the GUI thread; no timings)."""
        self._result_models[image_id] = model_key
        self._ai_failures.pop(image_id, None)
        self._timings.pop(image_id, None)
        self._ai_lesions[image_id] = lesions

    def forget_mask(self, image_id: str) -> None:
        """The reader's mask changed: measure it again when next asked."""
        self._mask_lesions.pop(image_id, None)

    def mask_lesions(self, case: Case) -> LesionStats:
        stats: LesionStats | None = self._mask_lesions.get(case.image_id)
        if stats is None:
            stats = self._mask_lesions[case.image_id] = case.lesions()
        return stats

    @staticmethod
    def ai_positive(case: Case) -> bool | None:
        """The model's call (`Prediction.positive`, kept on the case); None before the AI ran."""
        return case.ai_positive

    def row_area(self, case: Case) -> float | None:
        """The reader's mask once reviewed or drawn, otherwise the AI's."""
        if case.status.is_done or case.has_mask_pixels:
            return self.mask_lesions(case).area_cm2
        stats = self._ai_lesions.get(case.image_id)
        return None if stats is None else stats.area_cm2

    def row(self, case: Case, ai_error: str | None) -> WorklistRow:
        return WorklistRow(
            image_id=case.image_id, display_id=case.display_id, path=case.path or Path(),
            view=case.view_position or "", age=case.patient_age or "", sex=case.patient_sex or "",
            score=case.ai_score, area_cm2=self.row_area(case), ai_positive=self.ai_positive(case),
            status=case.status.value, error=ai_error, flagged=self.flagged(case), probability=self.probability(case),
            ai_warning=ai_scope_warning(case.metadata),
        )

    def session_row(self, case: Case, ai_error: str | None, listed: WorklistRow | None) -> WorklistRow:
        """`row(case, ai_error)`, or the row `listed` while its header was read when that still says it all
        (nothing restored or changed since): most rows of a large folder, not built a second time."""
        if (listed is not None and ai_error is None and case.ai_score is None and case.mask is None
                and listed.status == case.status and listed.display_id == case.display_id  # a str enum: == in C
                and (listed.path is case.path  # both the header's own path: most rows, checked at no cost
                     or str(listed.path) == str(case.path))):  # str(): Path's == casefolds both, 8x slower
            return listed
        return self.row(case, ai_error)

    @staticmethod
    def listed_row(metadata: DicomMetadata, display_id: str) -> WorklistRow:
        """The row of an image whose header was just read, before its case exists (no AI result, no
        restored status yet): what the worklist shows while a folder is indexed."""
        return WorklistRow(
            image_id=metadata.sop_instance_uid, display_id=display_id, path=metadata.path,
            view=metadata.view_position or "", age=metadata.patient_age or "", sex=metadata.patient_sex or "",
            ai_warning=ai_scope_warning(metadata),
        )

    def finding_fields(self, case: Case) -> dict[str, str]:
        ai = self._ai_lesions.get(case.image_id)
        mask = self.mask_lesions(case)
        timings = self._timings.get(case.image_id)
        return {
            "AI probability": self._probability_text(case),
            "Triage": self._triage_text(case),
            "AI score": self._score_text(case),
            "AI lesions": "" if ai is None else str(ai.count),
            "AI area": format_area(ai),
            "Mask lesions": str(mask.count),
            "Mask area": format_area(mask),
            "Status": case.status.value,
            "AI timings": "" if not timings else "  ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()),
            "AI model": self.model_of(case.image_id),
        }

    def model_of(self, image_id: str) -> str:
        """Which model version made the case's AI result ("" before there is one)."""
        if image_id not in self._result_models:
            return ""
        key = self._result_models[image_id]
        return self.model_names.get(key, f"model {key[:12]}" if key else "a model without a file")

    def _probability_text(self, case: Case) -> str:
        if case.ai_score is None:
            return ""
        probability = self.probability(case)
        if probability is None:  # say "probability" only where it is one
            return "not calibrated for this model (see the score)"
        fitted_on = self.calibration.fitted_on if self.calibration is not None else 0
        return f"{probability:.0%} (calibrated on {fitted_on} held-out films)"

    def _triage_text(self, case: Case) -> str:
        flag = self.flagged(case)
        if flag is None or self.triage_point is None:
            return ""
        where = self.triage_point.label()
        return f"flagged: read first ({where})" if flag else f"not flagged ({where})"

    def _score_text(self, case: Case) -> str:
        """The score with the call it makes, so a high score without a marked lesion is not a puzzle."""
        warning = ai_scope_warning(case.metadata)
        if case.ai_score is None and warning and not self.score_unvalidated:
            return f"not scored: {warning} (Worklist ▸ {SCORE_UNVALIDATED_TEXT})"
        if warning:  # scored, or being scored, on request
            return f"{warning}, scored on request: {self._validated_score_text(case)}"
        return self._validated_score_text(case)

    def _validated_score_text(self, case: Case) -> str:
        if case.ai_score is None:
            problem = self._ai_failures.get(case.image_id) or self.model_problem
            return "pending…" if problem is None else f"not available: {problem}"
        call = "pneumothorax" if case.ai_positive else "none"
        if self.score_is_presence_head:
            return f"{case.ai_score:.3f} (presence head); challenge rule: {call}"
        if self.presence_threshold is None:
            return f"{case.ai_score:.3f}: {call}"
        if case.ai_score < self.presence_threshold:
            return f"{case.ai_score:.3f} < {self.presence_threshold:.3f}: {call}"
        if not case.ai_positive:  # over the threshold, but every lesion was too small to keep
            return f"{case.ai_score:.3f} ≥ {self.presence_threshold:.3f}, no lesion large enough: none"
        return f"{case.ai_score:.3f} ≥ {self.presence_threshold:.3f}: {call}"


class RowRefresher(QObject):
    """A case's worklist row redrawn from the case: at once, or `later` for cases changed in bulk (an
    import, the AI sweep), whose masks measured one after another would hold up the window; those rows
    are refreshed a few milliseconds per event-loop turn, oldest change first."""

    def __init__(self, worklist_model: WorklistModel, findings: Findings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worklist_model = worklist_model
        self.findings = findings
        self._stale_rows: dict[str, Case] = {}  # rows to refresh, oldest change first
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._refresh_stale_rows)

    def refresh(self, case: Case) -> None:
        self.worklist_model.update_row(
            case.image_id, score=case.ai_score, status=case.status.value, area_cm2=self.findings.row_area(case),
            ai_positive=self.findings.ai_positive(case), flagged=self.findings.flagged(case),
            probability=self.findings.probability(case),
        )

    def later(self, case: Case) -> None:
        self._stale_rows[case.image_id] = case
        if not self._timer.isActive():
            self._timer.start()

    def clear(self) -> None:
        self._stale_rows.clear()

    def _refresh_stale_rows(self) -> None:
        deadline = time.perf_counter() + _ROW_REFRESH_BUDGET_S
        while self._stale_rows and time.perf_counter() < deadline:
            self.refresh(self._stale_rows.pop(next(iter(self._stale_rows))))
        if self._stale_rows:
            self._timer.start()
