"""Exporting reviewed annotations: a challenge-format CSV, one PNG mask per image, and DICOM objects.

The DICOM export writes, per case, a Segmentation (`<id>.seg.dcm`, the reader's read: MANUAL, or
SEMIAUTOMATIC naming the model for an accepted AI mask) and/or a burned-in overlay Secondary Capture
(`<id>.overlay.dcm`); a rejected case gets an empty segment, an explicit negative read.

Which cases: the reviewed ones (accepted, corrected, rejected) by default, or all of them. What
each case contributes: its editable mask, empty (`-1`) when rejected (see `Case.export_mask`).
Both exports are meant for a worker thread: `progress(done, total)` is called after each image and
`cancel()` is checked before each one; a cancel raises `errors.Cancelled`. The CSV is written
atomically at the end (a cancelled export leaves no file); each PNG is written atomically.
"""

from __future__ import annotations

import errno
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
from PIL import Image

from pneumoviewer.errors import CancelCheck, FileProblem, ProgressCallback, raise_if_cancelled
from pneumoviewer.io.annotations import write_annotation_masks
from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.io.rle import RleConvention
from pneumoviewer.review.case import Case, ReviewStatus, lesion_stats


class ExportScope(str, Enum):
    REVIEWED = "reviewed"  # accepted, corrected and rejected cases
    ALL = "all"  # every case; unreviewed ones with their current editable mask


class ExportError(FileProblem, OSError):
    """An export file or folder cannot be written; a file that was there before is unchanged."""


@dataclass(frozen=True)
class ExportSummary:
    path: Path  # the CSV file, or the PNG folder
    images: int
    positive: int  # images with at least one lesion pixel
    skipped: tuple[str, ...] = ()  # image ids whose source is no DICOM file (PNG/JPEG): nothing can refer to it
    generated_uids: tuple[str, ...] = ()  # image ids whose source lacked valid UIDs: generated for its objects


def cases_to_export(cases: Sequence[Case], scope: ExportScope = ExportScope.REVIEWED) -> list[Case]:
    if ExportScope(scope) is ExportScope.ALL:
        return list(cases)
    return [case for case in cases if case.status is not ReviewStatus.UNREVIEWED]


def export_csv(
    cases: Sequence[Case],
    path: Path,
    convention: RleConvention = RleConvention.RELATIVE,
    scope: ExportScope = ExportScope.REVIEWED,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> ExportSummary:
    """Write `ImageId,EncodedPixels` rows: one per lesion (8-connected region), `-1` for none."""
    path = Path(path)
    chosen = cases_to_export(cases, scope)
    masks = _ExportMasks(chosen, progress, cancel)
    try:
        write_annotation_masks(path, masks, convention)
    except OSError as error:
        raise ExportError(path, f"cannot write the annotations: {_why(error)}") from error
    return ExportSummary(path, len(chosen), masks.positive)


def export_pngs(
    cases: Sequence[Case],
    folder: Path,
    scope: ExportScope = ExportScope.REVIEWED,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> ExportSummary:
    """Write `<folder>/<image id>.png`: 8-bit, 255 = lesion, 0 = background, at image resolution."""
    folder = Path(folder)
    chosen = cases_to_export(cases, scope)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(folder, f"cannot create the folder: {_why(error)}") from error
    positive = 0
    for case, mask in _masks_with_progress(chosen, progress, cancel):
        positive += bool(mask.any())
        target = folder / f"{case.image_id}.png"
        buffer = io.BytesIO()
        Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG", optimize=False)
        try:
            atomic_write_bytes(target, buffer.getvalue())
        except OSError as error:
            raise ExportError(target, f"cannot write the mask image: {_why(error)}") from error
    return ExportSummary(folder, len(chosen), positive)


def export_dicom(
    cases: Sequence[Case],
    seg_dir: Path | None,
    overlay_dir: Path | None,
    model_version: str | None = None,
    scope: ExportScope = ExportScope.REVIEWED,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> ExportSummary:
    """Write a SEG per case into `seg_dir` and/or an overlay into `overlay_dir` (None: not that one).

    `model_version` (the fingerprint of the model whose masks the reader accepted) names the
    algorithm in accepted cases' SEGs and in the overlay captions; without it they say "manual".
    """
    from pneumoviewer.io.dicom import is_dicom_file
    from pneumoviewer.io.dicom_derived import DicomOutputError
    from pneumoviewer.io.dicom_overlay import overlay_caption, write_overlay
    from pneumoviewer.io.dicom_seg import AI_ALGORITHM_NAME, Algorithm, write_seg
    from pneumoviewer.io.overlay import safe_file_stem
    from pneumoviewer.review.lesions import LesionSource, case_right_on_left, find_lesions, lesion_labels

    folders = [folder for folder in (seg_dir, overlay_dir) if folder is not None]
    for folder in folders:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExportError(folder, f"cannot create the folder: {_why(error)}") from error
    chosen = cases_to_export(cases, scope)
    positive, skipped, generated = 0, [], []
    for case, mask in _masks_with_progress(chosen, progress, cancel):
        if case.path is None or not is_dicom_file(case.path):
            skipped.append(case.image_id)
            continue
        positive += bool(mask.any())
        stem = safe_file_stem(case.image_id)
        uids_generated: tuple[str, ...] = ()  # SEG and overlay share the source's UIDs: either one says it
        try:
            if seg_dir is not None:
                accepted_ai = case.status is ReviewStatus.ACCEPTED and model_version is not None
                algorithm = Algorithm(AI_ALGORITHM_NAME, model_version) if accepted_ai and model_version else None
                uids_generated = write_seg(Path(seg_dir) / f"{stem}.seg.dcm", case.path, mask, algorithm,
                                           reader_confirmed=True).generated_uids
            if overlay_dir is not None:
                stats = lesion_stats(mask, case.pixel_spacing_mm)
                caption = overlay_caption(bool(mask.any()), stats.area_mm2, stats.area_px, model_version,
                                          by_reader=True)
                labels = lesion_labels(find_lesions(mask, case.pixel_spacing_mm, LesionSource.READER,
                                                    case_right_on_left(case)))
                uids_generated = write_overlay(Path(overlay_dir) / f"{stem}.overlay.dcm", case.path, mask,
                                               caption, labels).generated_uids
        except DicomOutputError as error:
            raise ExportError(error.path, error.reason) from error
        if uids_generated:
            generated.append(case.image_id)
    return ExportSummary(Path(folders[0]) if folders else Path(), len(chosen) - len(skipped), positive,
                         tuple(skipped), tuple(generated))


def _why(error: OSError) -> str:
    """The cause in words; a file that was there before is unchanged (writes are atomic)."""
    if error.errno == errno.ENOSPC:
        return "the disk is full (an existing file there is unchanged)"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the folder is read-only or not writable (an existing file there is unchanged)"
    return str(error.strerror or error)


class _ExportMasks(Mapping[str, np.ndarray]):
    """The export masks, produced one by one as the CSV writer asks, with progress and cancel."""

    def __init__(self, cases: Sequence[Case], progress: ProgressCallback | None, cancel: CancelCheck | None) -> None:
        self._cases = {case.image_id: case for case in cases}
        self._progress = progress
        self._cancel = cancel
        self._seen: set[str] = set()
        self.positive = 0

    def __getitem__(self, image_id: str) -> np.ndarray:
        raise_if_cancelled(self._cancel, "export cancelled")
        mask = self._cases[image_id].export_mask()
        if image_id not in self._seen:
            self._seen.add(image_id)
            self.positive += bool(mask.any())
            if self._progress is not None:
                self._progress(len(self._seen), len(self._cases))
        return mask

    def __iter__(self) -> Iterator[str]:
        return iter(self._cases)

    def __len__(self) -> int:
        return len(self._cases)


def _masks_with_progress(
    cases: Sequence[Case], progress: ProgressCallback | None, cancel: CancelCheck | None
) -> Iterator[tuple[Case, np.ndarray]]:
    for done, case in enumerate(cases, 1):
        raise_if_cancelled(cancel, "export cancelled")
        yield case, case.export_mask()
        if progress is not None:
            progress(done, len(cases))
