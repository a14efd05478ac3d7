"""DICOM SEGs opened beside their sources become the editable masks, pixel for pixel (issue 15, Import).

Real SIIM (valid UIDs) and SIIM stage-2 (`ID_…` UIDs, generated for the SEG) files copied into tmp_path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pneumoviewer.cli import main
from pneumoviewer.io.annotations import read_annotation_masks
from pneumoviewer.io.dicom_seg import AI_ALGORITHM_NAME, Algorithm, write_seg
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.review.export import export_dicom
from pneumoviewer.review.opening import open_studies
from pneumoviewer.review.seg_import import NOT_IN_FOLDER, NOT_IN_SELECTION

STAGE2 = "unlabelled/ID_025f1e40c.dcm"


@pytest.fixture(scope="module")
def siim_pair(siim_dir: Path, siim_labels_csv: Path) -> tuple[Path, np.ndarray, Path, Path]:
    """A positive SIIM image with its real mask, a negative one, and a third (for "foreign" SEGs)."""
    masks = read_annotation_masks(siim_labels_csv)
    files = sorted((siim_dir / "dicom-images").rglob("*.dcm"))
    positive = next(path for path in files if masks.get(path.stem) is not None and masks[path.stem].any())
    negatives = [path for path in files if path.stem in masks and masks[path.stem] is None
                 or (masks.get(path.stem) is not None and not masks[path.stem].any())]
    return positive, masks[positive.stem], negatives[0], negatives[1]


def _folder(tmp_path: Path, data_dir: Path, *sources: Path) -> Path:
    folder = tmp_path / "studies"
    folder.mkdir()
    for source in sources:
        shutil.copy(source, folder)
    shutil.copy(data_dir / STAGE2, folder)
    return folder


def _box(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[100:300, 200:260] = True
    mask[601, 602] = True  # a single pixel: nothing smoothed or resampled on the way
    return mask


def test_exported_segs_open_as_the_same_masks(tmp_path: Path, data_dir: Path, siim_pair) -> None:
    positive, truth, negative, _ = siim_pair
    folder = _folder(tmp_path, data_dir, positive, negative)
    reviewed = open_studies([folder], data_dir=tmp_path / "reader-a").session
    by_name = {case.path.name: case for case in reviewed.cases}
    stage2 = by_name[Path(STAGE2).name]
    by_name[positive.name].load_mask(truth)
    reviewed.set_status(by_name[positive.name].image_id, ReviewStatus.CORRECTED)
    reviewed.set_status(by_name[negative.name].image_id, ReviewStatus.REJECTED)
    stage2.load_mask(_box(stage2.shape))
    reviewed.set_status(stage2.image_id, ReviewStatus.CORRECTED)
    export_dicom(reviewed.cases, folder, None)  # the SEGs beside their sources
    reviewed.close()
    assert len(list(folder.glob("*.seg.dcm"))) == 3

    opened = open_studies([folder], data_dir=tmp_path / "reader-b")  # a fresh data folder: no autosave

    assert opened.unreadable == []
    assert len(opened.session) == 3
    assert sorted(opened.segmentations.applied) == sorted(case.image_id for case in reviewed.cases)
    assert opened.segmentations.positive == 2
    for case in opened.session.cases:
        original = reviewed.case(case.image_id)
        assert case.mask is not None if original.mask is not None else case.mask is None
        if original.mask is not None:
            np.testing.assert_array_equal(case.mask, original.mask)
            assert case.mask.dtype == bool
        assert case.status is ReviewStatus.UNREVIEWED  # as an annotation import: what to review
    np.testing.assert_array_equal(opened.session.case(by_name[positive.name].image_id).mask, truth)
    opened.session.close()

    again = open_studies([folder], data_dir=tmp_path / "reader-b")  # the imported masks were autosaved
    assert again.unreadable == []  # the same masks: nothing to say
    np.testing.assert_array_equal(again.session.case(by_name[positive.name].image_id).mask, truth)


def test_a_seg_of_another_image_and_a_damaged_seg_are_listed(tmp_path: Path, data_dir: Path, siim_pair) -> None:
    positive, truth, negative, foreign = siim_pair
    folder = _folder(tmp_path, data_dir, positive, negative)
    write_seg(folder / "foreign.seg.dcm", foreign, _box((1024, 1024)), None)
    write_seg(tmp_path / "good.seg.dcm", positive, truth, None)
    data = (tmp_path / "good.seg.dcm").read_bytes()
    (folder / "cut.seg.dcm").write_bytes(data[: len(data) - 1000])  # ends inside the pixel data
    write_seg(folder / "ok.seg.dcm", positive, truth, None)

    opened = open_studies([folder], data_dir=tmp_path / "data")

    reasons = {Path(problem.path).name: problem.reason for problem in opened.unreadable}
    assert set(reasons) == {"foreign.seg.dcm", "cut.seg.dcm"}
    assert reasons["foreign.seg.dcm"] == NOT_IN_FOLDER
    assert reasons["cut.seg.dcm"]  # a reason in words, whichever reader noticed the damage
    assert len(opened.session) == 3  # the rest opens
    case = next(case for case in opened.session.cases if case.path.name == positive.name)
    np.testing.assert_array_equal(case.mask, truth)

    selection = open_studies([folder / positive.name, folder / "foreign.seg.dcm"], data_dir=tmp_path / "data")
    assert [problem.reason for problem in selection.unreadable] == [NOT_IN_SELECTION]


def test_the_readers_autosaved_work_wins_over_a_seg(tmp_path: Path, data_dir: Path, siim_pair) -> None:
    positive, truth, negative, _ = siim_pair
    folder = _folder(tmp_path, data_dir, positive, negative)
    session = open_studies([folder], data_dir=tmp_path / "data").session
    mine = next(case for case in session.cases if case.path.name == positive.name)
    other = next(case for case in session.cases if case.path.name == negative.name)
    typed = _box(mine.shape)
    mine.editor.set_mask(typed)
    session.set_status(mine.image_id, ReviewStatus.CORRECTED)
    session.set_status(other.image_id, ReviewStatus.REJECTED)
    session.close()
    write_seg(folder / "mine.seg.dcm", positive, truth, None)
    write_seg(folder / "other.seg.dcm", negative, _box(other.shape), None)

    opened = open_studies([folder], data_dir=tmp_path / "data")

    reopened = opened.session
    np.testing.assert_array_equal(reopened.case(mine.image_id).mask, typed)
    assert reopened.case(mine.image_id).status is ReviewStatus.CORRECTED
    assert reopened.case(other.image_id).mask is None
    assert reopened.case(other.image_id).status is ReviewStatus.REJECTED
    assert opened.segmentations.applied == []
    assert sorted(opened.segmentations.kept) == sorted([mine.image_id, other.image_id])
    reasons = {Path(problem.path).name: problem.reason for problem in opened.unreadable}
    assert reasons["mine.seg.dcm"] == f"not applied: your own review of {mine.display_id} (autosaved) is kept"
    assert "not applied" in reasons["other.seg.dcm"]


def test_an_ai_seg_is_an_editable_mask_below_the_readers(tmp_path: Path, data_dir: Path, siim_pair) -> None:
    positive, truth, negative, _ = siim_pair
    folder = _folder(tmp_path, data_dir, positive, negative)
    ai = Algorithm(AI_ALGORITHM_NAME, "0123456789abcdef")
    write_seg(folder / "a-ai.seg.dcm", positive, _box(truth.shape), ai)
    write_seg(folder / "b-reader.seg.dcm", positive, truth, None)
    write_seg(folder / "c-ai.seg.dcm", negative, _box(truth.shape), ai)

    opened = open_studies([folder], data_dir=tmp_path / "data")

    by_name = {case.path.name: case for case in opened.session.cases}
    np.testing.assert_array_equal(by_name[positive.name].mask, truth)  # the reader's SEG, not the AI's
    np.testing.assert_array_equal(by_name[negative.name].mask, _box(truth.shape))
    assert by_name[negative.name].status is ReviewStatus.UNREVIEWED
    assert by_name[negative.name].ai_score is None  # not an AI result: the model's own arrives apart
    assert [Path(problem.path).name for problem in opened.unreadable] == ["a-ai.seg.dcm"]
    assert "another segmentation" in opened.unreadable[0].reason


def test_export_of_a_folder_with_segs(tmp_path: Path, data_dir: Path, siim_pair,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    positive, truth, negative, _ = siim_pair
    folder = _folder(tmp_path, data_dir, positive, negative)
    write_seg(folder / "p.seg.dcm", positive, truth, None)

    assert main(["export", str(folder), "--all", "--out", str(tmp_path / "out.csv")]) == 0

    assert "skipped" not in capsys.readouterr().err
    masks = read_annotation_masks(tmp_path / "out.csv")
    np.testing.assert_array_equal(masks[positive.stem], truth)
    assert [path.name for path in scan_folder(folder).segmentations] == ["p.seg.dcm"]
