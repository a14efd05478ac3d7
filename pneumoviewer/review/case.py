"""One image of the worklist: its header facts, the AI result, the one editable mask and its status.

Status rules (what a reader of the worklist expects):
- The user sets the status. UNREVIEWED is the only status that does not count as done.
- ACCEPTED means "the displayed result is right". Accepting a case whose editable mask is still
  empty adopts the AI mask into it (one undo step), so the export writes what the user accepted.
- A manual edit (stroke, fill, clear) on an UNREVIEWED or ACCEPTED case marks it CORRECTED.
  On a REJECTED case ("no pneumothorax") it marks it CORRECTED only if the mask then holds pixels:
  drawing a lesion contradicts the rejection, erasing does not.
- Starting from the AI mask, undo and redo never change the status (status is not in mask history).
- The AI may re-run at any time: it replaces the AI score and mask only, never the editable mask
  or its undo history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from skimage.measure import label

from pneumoviewer.review.events import Callbacks
from pneumoviewer.review.mask_editor import (
    MANUAL_EDITS,
    DirtyRect,
    EditKind,
    MaskEditor,
)

if TYPE_CHECKING:
    from pneumoviewer.io.dicom import DicomMetadata


class ReviewStatus(str, Enum):
    UNREVIEWED = "unreviewed"
    ACCEPTED = "accepted"  # the displayed result is right
    CORRECTED = "corrected"  # the mask was edited by hand
    REJECTED = "rejected"  # no pneumothorax

    @property
    def is_done(self) -> bool:
        return self is not ReviewStatus.UNREVIEWED


class CaseChange(str, Enum):
    MASK = "mask"  # an edit of the editable mask was committed (stroke end, fill, undo...)
    STATUS = "status"
    AI = "ai"  # a new AI result arrived


@dataclass(frozen=True)
class LesionStats:
    count: int  # connected regions (8-connectivity, as one RLE row per lesion on export)
    area_px: int
    area_mm2: float | None  # None when the pixel spacing is unknown

    @property
    def area_cm2(self) -> float | None:
        return None if self.area_mm2 is None else self.area_mm2 / 100.0


def lesion_stats(mask: np.ndarray | None, pixel_spacing_mm: tuple[float, float] | None) -> LesionStats:
    """Lesion count and area; the area in mm² is pixels × row spacing × column spacing."""
    rows = np.flatnonzero(mask.any(axis=1)) if mask is not None and mask.size else np.zeros(0, dtype=np.intp)
    if mask is None or not rows.size:
        return LesionStats(0, 0, None if pixel_spacing_mm is None else 0.0)
    # Labelled within the box around the lesions, the same regions as in the whole image (all else
    # is background) at a fraction of the cost: a small lesion on a 1024² film, 0.1 ms instead of 3.
    band = mask[rows[0] : rows[-1] + 1]
    columns = np.flatnonzero(band.any(axis=0))
    box = band[:, columns[0] : columns[-1] + 1]
    area_px = int(np.count_nonzero(box))
    count = int(label(box, connectivity=2, return_num=True)[1])
    area_mm2 = None
    if pixel_spacing_mm is not None:
        area_mm2 = area_px * float(pixel_spacing_mm[0]) * float(pixel_spacing_mm[1])
    return LesionStats(count, area_px, area_mm2)


@dataclass(eq=False)
class Case:
    """`display_id` is what the worklist shows: anonymised ("Case 0007"), never the patient's name/ID."""

    image_id: str  # SOPInstanceUID (or the file stem for PNG/JPEG)
    display_id: str
    shape: tuple[int, int]  # (rows, columns)
    path: Path | None = None
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column)
    patient_age: str | None = None
    patient_sex: str | None = None
    view_position: str | None = None
    metadata: DicomMetadata | None = field(default=None, repr=False)
    status: ReviewStatus = ReviewStatus.UNREVIEWED
    ai_score: float | None = None
    ai_positive: bool | None = None  # the model's call (`Prediction.positive`); None before the AI ran
    # The one editable mask; None until something is drawn, imported or restored (= empty).
    # Change it only through `editor` (or `load_mask`): the editor edits this very array.
    mask: np.ndarray | None = field(default=None, repr=False)
    changed: Callbacks[[Case, CaseChange]] = field(default_factory=Callbacks, init=False, repr=False)
    # The AI mask as the box around its pixels, packed 1 bit a pixel: a folder of hundreds of cases
    # keeps every AI result in a few MB (nothing at all for a case without a finding).
    _ai_box: tuple[int, int, int, int] | None = field(default=None, init=False, repr=False)  # row0, row1, col0, col1
    _ai_bits: np.ndarray | None = field(default=None, init=False, repr=False)
    _editor: MaskEditor | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_metadata(cls, metadata: DicomMetadata, display_id: str) -> Case:
        return cls(
            image_id=metadata.sop_instance_uid,
            display_id=display_id,
            shape=(int(metadata.rows), int(metadata.columns)),
            path=metadata.path,
            pixel_spacing_mm=metadata.pixel_spacing_mm,
            patient_age=metadata.patient_age,
            patient_sex=metadata.patient_sex,
            view_position=metadata.view_position,
            metadata=metadata,
        )

    # -- AI result ---------------------------------------------------------------------------

    @property
    def has_ai_result(self) -> bool:
        return self.ai_score is not None

    @property
    def ai_mask(self) -> np.ndarray | None:
        """The AI's lesion mask (a fresh array each call), None before the AI ran."""
        if self._ai_bits is None:
            return None
        mask = np.zeros(self.shape, dtype=bool)
        if self._ai_box is not None:
            row0, row1, col0, col1 = self._ai_box
            mask[row0:row1, col0:col1] = self._ai_box_pixels()
        return mask

    def _ai_box_pixels(self) -> np.ndarray:
        """The AI mask within its box (0x0 without a finding)."""
        if self._ai_box is None or self._ai_bits is None:
            return np.zeros((0, 0), dtype=bool)
        row0, row1, col0, col1 = self._ai_box
        box_shape = (row1 - row0, col1 - col0)
        return np.unpackbits(self._ai_bits, count=box_shape[0] * box_shape[1]).view(bool).reshape(box_shape)

    def set_ai_result(self, score: float, mask: np.ndarray, positive: bool) -> None:
        """Store (or replace) the AI score, mask and call (`Prediction.positive`); edits and their history stay."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.shape:
            raise ValueError(f"{self.image_id}: AI mask shape {mask.shape} differs from the image {self.shape}")
        self.ai_score = float(score)
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size:
            columns = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
            self._ai_box = (int(rows[0]), int(rows[-1]) + 1, int(columns[0]), int(columns[-1]) + 1)
            self._ai_bits = np.packbits(mask[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1].reshape(-1))
        else:
            self._ai_box, self._ai_bits = None, np.zeros(0, dtype=np.uint8)
        self.ai_positive = bool(positive)
        self.changed.emit(self, CaseChange.AI)

    def ai_lesions(self) -> LesionStats | None:
        """The AI mask's lesions (None before the AI ran), measured within its box, not the whole film."""
        return None if self._ai_bits is None else lesion_stats(self._ai_box_pixels(), self.pixel_spacing_mm)

    # -- the editable mask ---------------------------------------------------------------------

    @property
    def editor(self) -> MaskEditor:
        """The one door for changing this case's mask (created on first use, keeps its history)."""
        if self._editor is None:
            if self.mask is None:
                self.mask = np.zeros(self.shape, dtype=bool)
            self._editor = MaskEditor(self.mask)
            self._editor.edit_committed.connect(self._on_edit_committed)
        return self._editor

    @property
    def has_mask_pixels(self) -> bool:
        return self.mask is not None and bool(self.mask.any())

    def start_from_ai(self) -> DirtyRect | None:
        """Replace the editable mask by the AI mask (one undo step); None if there is no AI result."""
        ai_mask = self.ai_mask
        return None if ai_mask is None else self.editor.set_mask(ai_mask, EditKind.REPLACE)

    def lesions(self) -> LesionStats:
        return lesion_stats(self.mask, self.pixel_spacing_mm)

    def export_mask(self) -> np.ndarray:
        """What an export writes: empty when rejected, otherwise the editable mask."""
        if self.status is ReviewStatus.REJECTED or self.mask is None:
            return np.zeros(self.shape, dtype=bool)
        return self.mask

    def load_mask(self, mask: np.ndarray | None) -> None:
        """Take a mask from elsewhere (an imported annotation) as the editable mask.

        Once the case has an editor this is one undo step like any edit; before, it simply becomes
        the starting mask. Either way subscribers hear of it (so autosave keeps it).
        """
        if mask is not None and mask.shape != self.shape:
            raise ValueError(f"{self.image_id}: mask shape {mask.shape} differs from the image {self.shape}")
        if self._editor is not None:
            target = np.zeros(self.shape, dtype=bool) if mask is None else mask
            self._editor.set_mask(target, EditKind.REPLACE)
            return
        self.mask = None if mask is None else np.array(mask, dtype=bool, order="C")
        self.changed.emit(self, CaseChange.MASK)

    def restore(self, status: ReviewStatus, mask: np.ndarray | None) -> None:
        """Put back an autosaved state, silently, before any editing of this case."""
        if self._editor is not None:
            raise RuntimeError(f"{self.image_id}: cannot restore a case that is being edited")
        if mask is not None and mask.shape != self.shape:
            raise ValueError(f"{self.image_id}: saved mask shape {mask.shape} differs from the image {self.shape}")
        self.status = ReviewStatus(status)
        self.mask = None if mask is None else np.array(mask, dtype=bool, order="C")

    # -- status --------------------------------------------------------------------------------

    def set_status(self, status: ReviewStatus) -> None:
        status = ReviewStatus(status)
        if status is ReviewStatus.ACCEPTED and not self.has_mask_pixels:
            ai_mask = self.ai_mask
            if ai_mask is not None and ai_mask.any():
                self.editor.set_mask(ai_mask, EditKind.REPLACE)
        if status is not self.status:
            self.status = status
            self.changed.emit(self, CaseChange.STATUS)

    def _on_edit_committed(self, kind: EditKind, rect: DirtyRect) -> None:
        if kind in MANUAL_EDITS and self._edit_means_correction():
            self.status = ReviewStatus.CORRECTED
            self.changed.emit(self, CaseChange.STATUS)
        self.changed.emit(self, CaseChange.MASK)

    def _edit_means_correction(self) -> bool:
        if self.status in (ReviewStatus.UNREVIEWED, ReviewStatus.ACCEPTED):
            return True
        return self.status is ReviewStatus.REJECTED and self.has_mask_pixels
