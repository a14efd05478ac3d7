"""The reviewed cases of a session as labelled examples for fine-tuning, checked, and snapshotted to a file.

Reviewed means a status the reader gave: ACCEPTED (the displayed result is right: the editable mask,
or the AI mask when nothing was drawn), CORRECTED (the reader's mask) and REJECTED (no pneumothorax:
no mask). A case whose labels contradict themselves is refused with the reason, never the run:
a CORRECTED case with an empty mask (a correction with nothing drawn), a REJECTED case that holds
mask pixels (an imported annotation left on a rejected film), a mask that is not the image's size.

The app takes a snapshot (`write_snapshot`) when fine-tuning starts, so the reader keeps reviewing
while the training process reads a fixed set; the snapshot holds image ids, file paths (to read the
pixels), statuses and masks as RLE. Nothing here imports Qt or torch: the app calls it on a worker.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.atomic import atomic_write_text
from pneumoviewer.io.rle import EMPTY, RleConvention, encode
from pneumoviewer.review.case import Case, ReviewStatus

# Fine-tuning is offered once this many cases are reviewed, with at least this many positives among them.
MIN_REVIEWED_CASES = 30
MIN_POSITIVE_CASES = 5
SNAPSHOT_FORMAT = 1
LABELLED = "labelled"  # the status of a case read from a challenge CSV (no reader status)


@dataclass(frozen=True)
class ReviewedCase:
    """One usable example: which image, where its file is, how it was reviewed, its mask as relative RLE."""

    image_id: str
    path: Path
    status: str  # a ReviewStatus value, or LABELLED
    mask_rle: str  # the union of the lesions, "-1" when there is none

    @property
    def positive(self) -> bool:
        return self.mask_rle.strip() not in (EMPTY, "")


@dataclass(frozen=True)
class RefusedCase:
    image_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.image_id}: {self.reason}"


@dataclass(frozen=True)
class ReviewedCases:
    cases: tuple[ReviewedCase, ...]
    refused: tuple[RefusedCase, ...] = ()

    @property
    def positives(self) -> int:
        return sum(case.positive for case in self.cases)

    def missing(self) -> str | None:
        """What is still missing before fine-tuning makes sense, in words; None when enough is reviewed."""
        return readiness_problem(len(self.cases), self.positives)


class SnapshotError(FileProblem, ValueError):
    """A snapshot of reviewed cases that cannot be read."""


def readiness_problem(reviewed: int, positives: int) -> str | None:
    """None when `reviewed` usable cases with `positives` positives are enough; otherwise what is missing."""
    needs = []
    if reviewed < MIN_REVIEWED_CASES:
        needs.append(f"{MIN_REVIEWED_CASES - reviewed} more reviewed cases ({reviewed} of {MIN_REVIEWED_CASES})")
    if positives < MIN_POSITIVE_CASES:
        needs.append(f"{MIN_POSITIVE_CASES - positives} more with a pneumothorax marked "
                     f"({positives} of {MIN_POSITIVE_CASES})")
    return None if not needs else "Needs " + " and ".join(needs) + "."


def refusal_reason(status: str, mask: np.ndarray | None, image_shape: tuple[int, int]) -> str | None:
    """Why a case's labels contradict themselves (None: usable). `mask` None means no mask."""
    if mask is not None and tuple(mask.shape) != tuple(image_shape):
        return (f"its mask is {mask.shape[1]}×{mask.shape[0]} pixels but the image is "
                f"{image_shape[1]}×{image_shape[0]}")
    pixels = 0 if mask is None else int(np.count_nonzero(mask))
    if status == ReviewStatus.CORRECTED.value and pixels == 0:
        return "marked corrected but its mask is empty (a correction with nothing drawn)"
    if status == ReviewStatus.REJECTED.value and pixels:
        return f"marked rejected (no pneumothorax) but its mask holds {pixels:,} pixels"
    return None


def reviewed_cases(cases: Iterable[Case]) -> ReviewedCases:
    """The reviewed cases of a session (any order), each checked; unreviewed ones are left out."""
    usable: list[ReviewedCase] = []
    refused: list[RefusedCase] = []
    for case in cases:
        if not case.status.is_done:
            continue
        if case.path is None:
            refused.append(RefusedCase(case.image_id, "its image file is not known"))
            continue
        mask = _labelled_mask(case)
        reason = refusal_reason(case.status.value, mask, case.shape)
        if reason is not None:
            refused.append(RefusedCase(case.image_id, reason))
            continue
        encoded = EMPTY if mask is None or not mask.any() else encode(mask, RleConvention.RELATIVE)
        usable.append(ReviewedCase(case.image_id, Path(case.path), case.status.value, encoded))
    return ReviewedCases(tuple(usable), tuple(refused))


def _labelled_mask(case: Case) -> np.ndarray | None:
    """What the reader's status says the truth is: accepted without a drawn mask means the AI's mask."""
    if case.status is ReviewStatus.ACCEPTED and not case.has_mask_pixels:
        return case.ai_mask
    return case.mask


def write_snapshot(cases: ReviewedCases, path: Path) -> None:
    """Write the cases (and the refusals, with their reasons) to `path` atomically, as JSON."""
    document = {
        "format": SNAPSHOT_FORMAT,
        "cases": [{"image_id": case.image_id, "path": str(case.path), "status": case.status, "mask": case.mask_rle}
                  for case in cases.cases],
        "refused": [{"image_id": refusal.image_id, "reason": refusal.reason} for refusal in cases.refused],
    }
    atomic_write_text(Path(path), json.dumps(document) + "\n")


def read_snapshot(path: Path) -> ReviewedCases:
    """The cases written by `write_snapshot`; raises `SnapshotError` naming the file."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(path, f"snapshot format {document.get('format')!r}, not {SNAPSHOT_FORMAT}")
        cases = tuple(ReviewedCase(str(item["image_id"]), Path(item["path"]), str(item["status"]), str(item["mask"]))
                      for item in document["cases"])
        refused = tuple(RefusedCase(str(item["image_id"]), str(item["reason"])) for item in document["refused"])
    except OSError as error:
        raise SnapshotError(path, f"cannot read the reviewed cases ({error.strerror or error})") from error
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SnapshotError(path, f"not a snapshot of reviewed cases ({error})") from error
    return ReviewedCases(cases, refused)


def merge_refusals(cases: ReviewedCases, more: Sequence[RefusedCase]) -> ReviewedCases:
    """`cases` without those refused in `more` (found out later, e.g. an unreadable image), `more` added."""
    dropped = {refusal.image_id for refusal in more}
    return ReviewedCases(tuple(case for case in cases.cases if case.image_id not in dropped),
                         cases.refused + tuple(more))


def autosaved_cases(folder: Path, data_dir: Path | None = None) -> ReviewedCases:
    """The reviewed cases the app autosaved for `folder`, read without writing anything.

    The headers are read as the app reads them (its header index is used, never rewritten), and the
    session is restored but not saved: the app may have the same folder open meanwhile.
    """
    from pneumoviewer.io.folder_scan import scan_folder
    from pneumoviewer.io.header_index import HeaderIndex
    from pneumoviewer.review.session import ReviewSession, session_store_for

    store = session_store_for([Path(folder)], data_dir)
    scan = scan_folder(Path(folder), index=HeaderIndex.load(store.headers_path))
    session = ReviewSession.from_metadata(store.folder, scan.images, data_dir)
    problems = tuple(RefusedCase(Path(error.path).name, error.reason) for error in session.restore_problems)
    gathered = reviewed_cases(session.cases)
    return ReviewedCases(gathered.cases, gathered.refused + problems)
