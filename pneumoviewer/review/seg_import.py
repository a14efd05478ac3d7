"""DICOM SEGs found beside their source images become those cases' editable masks.

The rule is the annotation import's (`ReviewSession.import_annotations`): the SEG's mask becomes the
case's editable mask (an empty segment: no pneumothorax, like a "-1" row) and statuses are unchanged:
an import is what to review. The reader's own work always wins: a case that already had a status or
a mask in the autosave keeps it, and the SEG is named as not applied (unless it holds that very mask,
as when it was imported on a previous opening: nothing to say then). Nothing typed is ever lost.

A SEG written by our AI (`predict --seg-dir`: AUTOMATIC, `AI_ALGORITHM_NAME`) follows the same rule,
as a CSV of `predict` does when imported: it becomes the editable mask to review, never the AI
result, because the AI result is the model's score, call and mask keyed by the model and the file
(`prediction_store`); a SEG has no score, and the model's own result arrives (or is restored) anyway.
When several SEGs segment one image, a reader's (MANUAL or SEMIAUTOMATIC) is preferred to our AI's,
then the first in path order; the others are listed as not applied.

SOP Instance UIDs that are invalid in the source (SIIM stage 2, `ID_…`) are matched through the UID
our derived objects generate for them (`io.dicom_derived.referenced_sop_instance_uid`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pneumoviewer.io.dicom import DicomError
from pneumoviewer.io.dicom_derived import referenced_sop_instance_uid
from pneumoviewer.review.case import Case, ReviewStatus
from pneumoviewer.review.session import ReviewSession

NOT_IN_FOLDER = "a segmentation of an image that is not in this folder"
NOT_IN_SELECTION = "a segmentation of an image that is not among the files opened"


@dataclass
class SegImport:
    applied: list[str] = field(default_factory=list)  # image ids given a SEG's mask now
    kept: list[str] = field(default_factory=list)  # image ids whose autosaved reader's work was kept
    not_used: list[DicomError] = field(default_factory=list)  # SEGs not applied, each with its reason
    positive: int = 0  # of the masks applied, those holding a pneumothorax


def import_segmentations(session: ReviewSession, seg_paths: Sequence[Path], selection: bool = False) -> SegImport:
    """Apply the SEGs at `seg_paths` to the cases of `session`, just restored from its autosave.

    Call it right after the session is made (before any editing): a case's status or mask then
    comes from the autosave only, so it is the reader's earlier work. Never raises for a bad SEG:
    damaged files, SEGs of other images and SEGs not applied are listed in `not_used`.
    """
    from pneumoviewer.io.dicom_derived import DicomOutputError
    from pneumoviewer.io.dicom_seg import SegmentationRead, open_seg  # highdicom: only when there are SEGs

    summary = SegImport()
    cases_by_uid: dict[str, Case] = {}
    for case in session.cases:
        uid = referenced_sop_instance_uid(case.image_id)
        if uid is not None:
            cases_by_uid.setdefault(uid, case)
    chosen: dict[str, tuple[SegmentationRead, np.ndarray]] = {}  # image id -> (the SEG used, its mask)
    for path in sorted(seg_paths, key=str):
        try:
            seg = open_seg(path)
            matched = [(cases_by_uid[uid], seg.mask(uid)) for uid in seg.source_uids if uid in cases_by_uid]
        except DicomOutputError as error:
            summary.not_used.append(DicomError(error.path, error.reason))
            continue
        if not matched:
            summary.not_used.append(DicomError(path, NOT_IN_SELECTION if selection else NOT_IN_FOLDER))
            continue
        for case, mask in matched:
            if mask.shape != case.shape:
                summary.not_used.append(DicomError(path, f"its mask is {mask.shape[0]}x{mask.shape[1]}, the image "
                                                         f"{case.shape[0]}x{case.shape[1]}: not applied"))
                continue
            earlier = chosen.get(case.image_id)
            if earlier is None or (earlier[0].by_our_ai and not seg.by_our_ai):
                if earlier is not None:
                    summary.not_used.append(_superseded(earlier[0].path, case, path))
                chosen[case.image_id] = (seg, mask)
            else:
                summary.not_used.append(_superseded(path, case, earlier[0].path))
    for image_id, (seg, mask) in chosen.items():
        case = session.case(image_id)
        if _has_reader_work(case):
            if not _same_mask(case.mask, mask):
                summary.kept.append(image_id)
                summary.not_used.append(DicomError(seg.path, f"not applied: your own review of {case.display_id} "
                                                             "(autosaved) is kept"))
            continue
        case.load_mask(mask if mask.any() else None)
        summary.applied.append(image_id)
        summary.positive += bool(mask.any())
    return summary


def _has_reader_work(case: Case) -> bool:
    return case.status is not ReviewStatus.UNREVIEWED or case.mask is not None


def _same_mask(current: np.ndarray | None, seg_mask: np.ndarray) -> bool:
    if current is None:
        return not seg_mask.any()
    return bool(np.array_equal(current, seg_mask))


def _superseded(path: Path, case: Case, used: Path) -> DicomError:
    return DicomError(path, f"not applied: another segmentation of {case.display_id} is used ({used.name})")
