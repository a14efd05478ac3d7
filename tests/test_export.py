"""Export of reviewed annotations: challenge CSV that re-imports identically, PNG masks, cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.measure import label

from pneumoviewer.errors import Cancelled, FileProblem
from pneumoviewer.io.annotations import read_annotation_masks, read_annotation_rows
from pneumoviewer.io.rle import RleConvention, decode
from pneumoviewer.review.case import Case, ReviewStatus
from pneumoviewer.review.export import (
    ExportError,
    ExportScope,
    export_csv,
    export_pngs,
)

SHAPE = (1024, 1024)
STATUSES = [ReviewStatus.ACCEPTED, ReviewStatus.CORRECTED, ReviewStatus.REJECTED, ReviewStatus.UNREVIEWED]


@pytest.fixture(scope="module")
def label_masks(siim_labels_csv: Path) -> dict[str, np.ndarray]:
    """The first 24 positive and 8 negative images of the challenge labels, rows united."""
    rows = [line.split(",", 1) for line in siim_labels_csv.read_text().splitlines()[1:]]
    masks: dict[str, np.ndarray] = {}
    negatives = 0
    for image_id, encoded in rows:
        encoded = encoded.strip()
        if encoded == "-1":
            if negatives < 8 and image_id not in masks:
                masks[image_id] = np.zeros(SHAPE, dtype=bool)
                negatives += 1
            continue
        if image_id in masks or sum(m.any() for m in masks.values()) < 24:
            masks[image_id] = masks.get(image_id, np.zeros(SHAPE, dtype=bool)) | decode(encoded, SHAPE)
    assert "1.2.276.0.7230010.3.1.4.8323329.307.1517875162.311533" in masks  # 4 overlapping rows
    return masks


@pytest.fixture
def cases(label_masks: dict[str, np.ndarray]) -> list[Case]:
    made = []
    for number, (image_id, mask) in enumerate(label_masks.items()):
        case = Case(image_id, f"Case {number:04d}", SHAPE)
        case.load_mask(mask)
        case.set_status(STATUSES[number % len(STATUSES)])
        made.append(case)
    return made


@pytest.mark.parametrize("convention", list(RleConvention))
def test_the_exported_csv_reimports_identically(tmp_path: Path, cases: list[Case], convention: RleConvention) -> None:
    target = tmp_path / "reviewed.csv"
    summary = export_csv(cases, target, convention)
    reviewed = [case for case in cases if case.status is not ReviewStatus.UNREVIEWED]
    assert summary.images == len(reviewed) == 24
    reimported = read_annotation_masks(target, SHAPE, convention)
    assert set(reimported) == {case.image_id for case in reviewed}
    for case in reviewed:
        expected = np.zeros(SHAPE, dtype=bool) if case.status is ReviewStatus.REJECTED else case.mask
        assert np.array_equal(reimported[case.image_id], expected), case.image_id
    assert summary.positive == sum(bool(reimported[i].any()) for i in reimported)


def test_one_row_per_lesion_and_minus_one_for_none(tmp_path: Path, cases: list[Case]) -> None:
    target = tmp_path / "reviewed.csv"
    export_csv(cases, target, scope=ExportScope.ALL)
    rows = read_annotation_rows(target)
    assert target.read_text().splitlines()[0].replace(" ", "") == "ImageId,EncodedPixels"
    for case in cases:
        encoded = [text for image_id, text in rows if image_id == case.image_id]
        mask = case.export_mask()
        if not mask.any():
            assert encoded == ["-1"]
        else:
            assert len(encoded) == label(mask, connectivity=2, return_num=True)[1]
            assert "-1" not in encoded


def test_all_scope_includes_unreviewed_cases(tmp_path: Path, cases: list[Case]) -> None:
    summary = export_csv(cases, tmp_path / "all.csv", scope=ExportScope.ALL)
    assert summary.images == len(cases)
    assert set(read_annotation_masks(tmp_path / "all.csv")) == {case.image_id for case in cases}


def test_png_masks_are_0_or_255_at_image_resolution(tmp_path: Path, cases: list[Case]) -> None:
    progress: list[tuple[int, int]] = []
    summary = export_pngs(cases[:8], tmp_path / "masks", progress=lambda done, total: progress.append((done, total)))
    assert progress == [(n, 6) for n in range(1, 7)]  # 6 of the 8 are reviewed
    files = sorted((tmp_path / "masks").iterdir())
    assert len(files) == summary.images == 6
    for case in cases[:8]:
        if case.status is ReviewStatus.UNREVIEWED:
            continue
        pixels = np.asarray(Image.open(tmp_path / "masks" / f"{case.image_id}.png"))
        assert pixels.dtype == np.uint8 and pixels.shape == SHAPE
        assert set(np.unique(pixels)) <= {0, 255}
        assert np.array_equal(pixels == 255, case.export_mask())


def test_a_cancelled_export_leaves_the_previous_file_intact(tmp_path: Path, cases: list[Case]) -> None:
    target = tmp_path / "reviewed.csv"
    target.write_text("ImageId,EncodedPixels\nprevious,-1\n")
    progress: list[int] = []
    with pytest.raises(Cancelled):
        export_csv(cases, target, progress=lambda done, total: progress.append(done), cancel=lambda: len(progress) >= 5)
    assert progress == [1, 2, 3, 4, 5]
    assert target.read_text() == "ImageId,EncodedPixels\nprevious,-1\n"
    assert [path.name for path in tmp_path.iterdir()] == ["reviewed.csv"]  # no temp file left
    with pytest.raises(Cancelled):
        export_pngs(cases, tmp_path / "masks", cancel=lambda: True)
    assert not any((tmp_path / "masks").iterdir())


def test_an_unwritable_target_raises_a_clear_error(tmp_path: Path, cases: list[Case]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(ExportError) as caught:
        export_pngs(cases, blocker / "masks")
    assert caught.value.path == blocker / "masks"
    assert isinstance(caught.value, FileProblem) and isinstance(caught.value, OSError)  # old `except OSError` still works
    assert str(caught.value) == f"{blocker / 'masks'}: {caught.value.reason}"
    with pytest.raises(ExportError, match="not-a-folder"):
        export_csv(cases, blocker / "reviewed.csv")
