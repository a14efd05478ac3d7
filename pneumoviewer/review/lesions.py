"""Each lesion of a mask on its own: where it is (box, outline), how big (area, extent) and on which side.

The canvas overlay, the lesion list, the exported pictures and the reports all describe lesions
from `find_lesions`, so the numbers a reader sees on the film, in the list and on paper agree.
A lesion is one 8-connected region (as one RLE row per lesion on export); its area is measured by
`case.lesion_stats`, the one area rule. Lesions are numbered largest first.

Side: the patient's left or right lung. Patient Orientation (0020,0020) says where the columns
point on the patient ("L" = towards the patient's left); without it a PA or AP chest film is
taken as displayed by the radiographic convention (the patient's right on the image's left), and
without either the side is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from skimage.measure import find_contours, label

from pneumoviewer.io.overlay import LesionLabel
from pneumoviewer.review.case import Case, lesion_stats

Box = tuple[int, int, int, int]  # row0, row1, col0, col1 (end-exclusive)
_CONVENTIONAL_VIEWS = {"PA", "AP"}


class Side(str, Enum):
    LEFT = "left"  # the patient's left lung
    RIGHT = "right"
    UNKNOWN = "side unknown"


class LesionSource(str, Enum):
    AI = "AI"
    READER = "reader"


@dataclass(frozen=True, eq=False)  # a lesion is itself: lists find it by identity
class Lesion:
    number: int  # 1 = the largest of its mask
    source: LesionSource
    box: Box
    pixels: np.ndarray  # bool, the lesion within its box
    area_px: int
    area_mm2: float | None  # None without pixel spacing
    extent_mm: tuple[float, float] | None  # (height, width) of the box; None without pixel spacing
    side: Side

    @property
    def area_cm2(self) -> float | None:
        return None if self.area_mm2 is None else self.area_mm2 / 100.0

    @property
    def name(self) -> str:
        """"AI 1" or "1": AI lesions are told apart from the reader's."""
        return f"AI {self.number}" if self.source is LesionSource.AI else str(self.number)

    def area_text(self) -> str:
        return f"{self.area_cm2:.1f} cm²" if self.area_cm2 is not None else f"{self.area_px:,} px"

    def extent_text(self) -> str:
        if self.extent_mm is None:
            return f"{self.box[1] - self.box[0]}×{self.box[3] - self.box[2]} px"
        return f"{self.extent_mm[0]:.0f}×{self.extent_mm[1]:.0f} mm"

    def label(self, ai_note: str | None = None) -> str:
        """The short text beside the lesion: name, area, and for AI lesions `ai_note` (the AI's
        probability, "p 0.93", or its uncalibrated score, "score 0.97": see `reports.model_facts`)."""
        parts = [self.name, self.area_text()]
        if self.source is LesionSource.AI and ai_note:
            parts.append(ai_note)
        return " · ".join(parts)

    def contains(self, row: float, col: float) -> bool:
        """Is image pixel (row, col) (integer part) one of this lesion's pixels?"""
        r, c = int(np.floor(row)) - self.box[0], int(np.floor(col)) - self.box[2]
        return 0 <= r < self.pixels.shape[0] and 0 <= c < self.pixels.shape[1] and bool(self.pixels[r, c])

    def outline(self) -> list[np.ndarray]:
        """Closed outlines around the lesion's pixels: (N, 2) arrays of (row, col) where pixel (r, c) covers
        [r, r + 1) × [c, c + 1) (pyqtgraph's image coordinates), so they run around the lesion on pixel
        edges rather than through its border pixels."""
        padded = np.pad(self.pixels, 1).astype(np.float32)
        # padded index p is box index p - 1, whose pixel starts at edge box + p - 1 and is centred half a pixel on
        offset = np.array([self.box[0] - 0.5, self.box[2] - 0.5])
        return [contour + offset for contour in find_contours(padded, 0.5)]


def patient_right_on_image_left(patient_orientation: str | None, view_position: str | None) -> bool | None:
    """Is the patient's right on the image's left? None when the image does not say.

    Patient Orientation's first code is the direction of increasing column: "L" (towards the patient's
    left) puts the patient's right on the left of the image, "R" the reverse. Without it, a PA or AP
    chest film follows the display convention (the patient's right on the viewer's left).
    """
    if patient_orientation:
        row_direction = patient_orientation.split("\\")[0].upper()
        if "L" in row_direction:
            return True
        if "R" in row_direction:
            return False
        return None
    if view_position and view_position.strip().upper() in _CONVENTIONAL_VIEWS:
        return True
    return None


def lesion_side(box: Box, image_columns: int, right_on_left: bool | None) -> Side:
    """The lung a lesion is in: the image half holding the centre of its box."""
    if right_on_left is None:
        return Side.UNKNOWN
    on_image_left = (box[2] + box[3]) / 2 < image_columns / 2
    return Side.RIGHT if on_image_left == right_on_left else Side.LEFT


def find_lesions(
    mask: np.ndarray | None,
    pixel_spacing_mm: tuple[float, float] | None,
    source: LesionSource = LesionSource.READER,
    right_on_left: bool | None = None,
) -> list[Lesion]:
    """Every 8-connected region of `mask`, largest first; `right_on_left` from `patient_right_on_image_left`."""
    if mask is None or not mask.any():
        return []
    rows = np.flatnonzero(mask.any(axis=1))
    band = mask[rows[0] : rows[-1] + 1]
    columns = np.flatnonzero(band.any(axis=0))
    row0, col0 = int(rows[0]), int(columns[0])
    # Labelled within the box around all lesions (as lesion_stats does): the same regions, far faster.
    regions = label(band[:, columns[0] : columns[-1] + 1], connectivity=2)
    found = []
    for region in range(1, int(regions.max()) + 1):
        where = regions == region
        region_rows = np.flatnonzero(where.any(axis=1))
        region_cols = np.flatnonzero(where.any(axis=0))
        r0, r1, c0, c1 = int(region_rows[0]), int(region_rows[-1]) + 1, int(region_cols[0]), int(region_cols[-1]) + 1
        pixels = where[r0:r1, c0:c1]
        box = (row0 + r0, row0 + r1, col0 + c0, col0 + c1)
        stats = lesion_stats(pixels, pixel_spacing_mm)
        extent = None
        if pixel_spacing_mm is not None:
            extent = ((r1 - r0) * float(pixel_spacing_mm[0]), (c1 - c0) * float(pixel_spacing_mm[1]))
        found.append((stats.area_px, box, pixels, stats.area_mm2, extent))
    found.sort(key=lambda item: (-item[0], item[1]))
    return [
        Lesion(number, source, box, pixels, area_px, area_mm2, extent,
               lesion_side(box, mask.shape[1], right_on_left))
        for number, (area_px, box, pixels, area_mm2, extent) in enumerate(found, start=1)
    ]


def lesion_at(lesions: list[Lesion], row: float, col: float) -> Lesion | None:
    """The lesion under image point (row, col): the reader's before the AI's, the smallest when nested."""
    hits = [lesion for lesion in lesions if lesion.contains(row, col)]
    hits.sort(key=lambda lesion: (lesion.source is LesionSource.AI, lesion.area_px))
    return hits[0] if hits else None


def lesion_labels(lesions: list[Lesion], ai_note: str | None = None) -> list[LesionLabel]:
    """The boxes and labels the exported pictures burn in (`io.overlay.overlay_picture`)."""
    return [LesionLabel(lesion.box, lesion.label(ai_note)) for lesion in lesions]


def case_right_on_left(case: Case) -> bool | None:
    """`patient_right_on_image_left` for a case, from its header."""
    orientation = case.metadata.patient_orientation if case.metadata is not None else None
    return patient_right_on_image_left(orientation, case.view_position)


def case_lesions(case: Case) -> tuple[list[Lesion], list[Lesion]]:
    """(the AI's lesions, the reader's lesions) of a case; the reader's are those an export writes."""
    right_on_left = case_right_on_left(case)
    ai = find_lesions(case.ai_mask, case.pixel_spacing_mm, LesionSource.AI, right_on_left)
    reader = find_lesions(case.mask, case.pixel_spacing_mm, LesionSource.READER, right_on_left)
    return ai, reader
