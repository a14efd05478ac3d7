"""Lesion geometry (review/lesions.py) and the labels burned into exported pictures (io/overlay.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from pneumoviewer.io.overlay import LesionLabel, overlay_picture, place_label
from pneumoviewer.io.rle import decode_rows
from pneumoviewer.review.case import lesion_stats
from pneumoviewer.review.lesions import (
    LesionSource,
    Side,
    find_lesions,
    lesion_at,
    lesion_labels,
    lesion_side,
    patient_right_on_image_left,
)


def _two_lesions() -> np.ndarray:
    mask = np.zeros((200, 300), dtype=bool)
    mask[20:40, 30:60] = True  # 600 px, image left
    mask[100:180, 200:260] = True  # 4,800 px, image right
    return mask


def test_lesions_are_numbered_largest_first_with_areas_and_extents() -> None:
    lesions = find_lesions(_two_lesions(), (0.5, 0.25), LesionSource.READER, True)
    assert [lesion.number for lesion in lesions] == [1, 2]
    assert [lesion.area_px for lesion in lesions] == [4800, 600]
    assert lesions[0].box == (100, 180, 200, 260)
    assert lesions[0].extent_mm == (40.0, 15.0)
    assert lesions[0].area_mm2 == pytest.approx(4800 * 0.125)
    assert lesions[0].label() == "1 · 6.0 cm²"
    assert [lesion.side for lesion in lesions] == [Side.LEFT, Side.RIGHT]  # the patient's right is on the left


def test_areas_add_up_to_the_one_area_rule_on_a_real_label(siim_labels_csv: Path) -> None:
    rows: dict[str, list[str]] = {}
    with open(siim_labels_csv, newline="") as stream:
        for image_id, encoded in list(csv.reader(stream))[1:]:
            rows.setdefault(image_id.strip(), []).append(encoded.strip())
    image_id = "1.2.276.0.7230010.3.1.4.8323329.307.1517875162.311533"  # 4 overlapping rows
    mask = decode_rows(rows[image_id], (1024, 1024))
    lesions = find_lesions(mask, (0.168, 0.168), LesionSource.AI, None)
    whole = lesion_stats(mask, (0.168, 0.168))
    assert len(lesions) == whole.count
    assert sum(lesion.area_px for lesion in lesions) == whole.area_px
    assert sum(lesion.area_mm2 or 0 for lesion in lesions) == pytest.approx(whole.area_mm2)
    assert all(lesion.side is Side.UNKNOWN for lesion in lesions)
    assert lesions[0].label("p 0.91").startswith("AI 1 · ") and lesions[0].label("p 0.91").endswith(" · p 0.91")


def test_without_spacing_areas_and_extents_are_in_pixels() -> None:
    lesion = find_lesions(_two_lesions(), None)[0]
    assert lesion.area_mm2 is None and lesion.extent_mm is None
    assert lesion.area_text() == "4,800 px" and lesion.extent_text() == "80×60 px"


def test_an_empty_mask_has_no_lesions() -> None:
    assert find_lesions(None, (0.2, 0.2)) == []
    assert find_lesions(np.zeros((8, 8), bool), (0.2, 0.2)) == []


@pytest.mark.parametrize(("orientation", "view", "expected"), [
    ("L\\F", None, True), ("R\\F", "PA", False), ("A\\F", "PA", None), (None, "PA", True), (None, "AP", True),
    (None, "LL", None), (None, None, None),
])
def test_side_from_patient_orientation_then_view_position(orientation, view, expected) -> None:
    assert patient_right_on_image_left(orientation, view) is expected


def test_lesion_side_follows_the_box_centre() -> None:
    assert lesion_side((0, 10, 0, 40), 100, True) is Side.RIGHT
    assert lesion_side((0, 10, 0, 40), 100, False) is Side.LEFT
    assert lesion_side((0, 10, 60, 100), 100, True) is Side.LEFT
    assert lesion_side((0, 10, 60, 100), 100, None) is Side.UNKNOWN


def test_lesion_at_finds_the_lesion_under_a_pixel_not_its_box_corner() -> None:
    mask = np.zeros((50, 50), bool)
    mask[10:20, 10:20] = True
    mask[30, 30:40] = True
    mask[30:40, 30] = True  # an L: its box's far corner is not the lesion
    reader = find_lesions(mask, None)
    assert lesion_at(reader, 15, 15) is reader[0]
    assert lesion_at(reader, 30.5, 35.9) is reader[1]
    assert lesion_at(reader, 39, 39) is None
    ai = find_lesions(mask, None, LesionSource.AI)
    assert lesion_at(ai + reader, 15, 15) is reader[0]  # the reader's lesion first


def test_outline_runs_around_the_lesion_on_pixel_edges() -> None:
    mask = np.zeros((20, 20), bool)
    mask[5:10, 4:8] = True
    (outline,) = find_lesions(mask, None)[0].outline()
    assert outline[:, 0].min() == pytest.approx(5) and outline[:, 0].max() == pytest.approx(10)
    assert outline[:, 1].min() == pytest.approx(4) and outline[:, 1].max() == pytest.approx(8)


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_a_label_goes_beside_its_box_and_clear_of_others() -> None:
    bounds = (0, 0, 500, 400)
    box = (100, 100, 200, 150)
    first = place_label(box, (80, 16), bounds)
    assert first == (100, 81, 180, 97)  # above, left-aligned
    second = place_label((100, 2, 200, 60), (80, 16), bounds, avoid=[first])
    assert not _overlaps(second, (100, 2, 200, 60)) and not _overlaps(second, first)
    corner = place_label((0, 0, 60, 40), (80, 16), bounds)  # no room above or left: below
    assert not _overlaps(corner, (0, 0, 60, 40)) and corner[1] >= 40


@pytest.mark.parametrize("box", [(0, 0, 500, 380), (70, 0, 500, 400), (0, 0, 100, 400), (400, 0, 500, 400)])
def test_a_label_never_covers_its_box_while_any_side_has_room(box) -> None:
    spot = place_label(box, (60, 12), (0, 0, 500, 400))
    assert not _overlaps(spot, box)
    assert spot[0] >= 0 and spot[2] <= 500 and spot[1] >= 0 and spot[3] <= 400


def test_exported_picture_has_a_box_and_label_beside_each_lesion() -> None:
    mask = _two_lesions()
    pixels = np.full(mask.shape, 0.3, dtype=np.float32)
    lesions = find_lesions(mask, (0.5, 0.25))
    labels = lesion_labels(lesions)
    assert labels == [LesionLabel((100, 180, 200, 260), "1 · 6.0 cm²"), LesionLabel((20, 40, 30, 60), "2 · 0.8 cm²")]
    picture = np.asarray(overlay_picture(pixels, mask, None, "caption", labels))
    yellow = (picture[..., 0] > 200) & (picture[..., 1] > 180) & (picture[..., 2] < 80)
    plain = np.asarray(overlay_picture(pixels, mask, None, "caption"))
    assert not ((plain[..., 0] > 200) & (plain[..., 1] > 180) & (plain[..., 2] < 80)).any()
    assert yellow[99, 200:260].all()  # the box's top edge, just outside the lesion
    assert not yellow[101:179, 201:259].any()  # nothing drawn over the lesion itself
    assert yellow[:99, 200:300].any()  # its label, above it


def test_the_burned_in_dicom_overlay_carries_each_lesion_box_and_label(siim_dir: Path, tmp_path: Path) -> None:
    import pydicom

    from pneumoviewer.io.dicom import read_header
    from pneumoviewer.review.case import Case, ReviewStatus
    from pneumoviewer.review.export import ExportScope, export_dicom

    source = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[0]
    case = Case.from_metadata(read_header(source), "Case 0001")
    mask = np.zeros(case.shape, dtype=bool)
    mask[400:500, 300:420] = True
    case.load_mask(mask)
    case.set_status(ReviewStatus.CORRECTED)
    export_dicom([case], None, tmp_path, scope=ExportScope.ALL)
    picture = pydicom.dcmread(tmp_path / f"{case.image_id}.overlay.dcm").pixel_array
    yellow = (picture[..., 0] > 200) & (picture[..., 1] > 180) & (picture[..., 2] < 80)
    assert yellow[398:400, 300:420].any()  # the box, just outside the lesion
    assert not yellow[402:498, 302:418].any()
    assert yellow[:398, 300:600].any()  # "1 · <area> cm²" above it
