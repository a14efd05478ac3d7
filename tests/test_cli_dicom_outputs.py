"""`pneumoviewer predict --seg-dir` and `pneumoviewer export --seg-dir --overlay-dir` on real DICOMs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_validation import DCIODVFY, dciodvfy_errors  # tests/dicom_validation.py

from pneumoviewer.cli import main
from pneumoviewer.io.annotations import read_annotation_masks
from pneumoviewer.io.dicom_derived import is_valid_uid
from pneumoviewer.io.dicom_seg import read_seg_mask
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.model.identity import model_fingerprint
from pneumoviewer.paths import demo_dir
from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.review.session import ReviewSession

DEMO_DIR = demo_dir()


def _assert_valid(path: Path) -> None:
    if DCIODVFY is not None:  # the dciodvfy checks themselves are in test_dicom_seg.py (skipped with a reason)
        assert dciodvfy_errors(path) == [], path.name


@pytest.mark.usefixtures("private_onnx_cache")
def test_predict_writes_one_ai_seg_per_dicom(data_dir: Path, random_checkpoint: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    siim = shutil.copy(sorted(DEMO_DIR.glob("*.dcm"))[0], folder)
    stage2 = shutil.copy(data_dir / "unlabelled" / "ID_025f1e40c.dcm", folder)
    segs = tmp_path / "segs"

    assert main(["predict", str(folder), "--out", str(tmp_path / "p.csv"), "--model", str(random_checkpoint),
                 "--seg-dir", str(segs)]) == 0

    masks = read_annotation_masks(tmp_path / "p.csv")
    for source in (Path(siim), Path(stage2)):
        seg = segs / f"{source.stem}.seg.dcm"
        _assert_valid(seg)
        segment = pydicom.dcmread(seg).SegmentSequence[0]
        assert segment.SegmentAlgorithmType == "AUTOMATIC"
        assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == \
            model_fingerprint(random_checkpoint)
        np.testing.assert_array_equal(read_seg_mask(seg, source), masks[source.stem])
    output = capsys.readouterr()
    assert "DICOM SEGs: 2 in" in output.out
    assert "SOPInstanceUID missing or invalid: generated for its SEG" in output.err


def test_export_writes_the_readers_segs_and_overlays(tmp_path: Path, random_checkpoint: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    folder = tmp_path / "studies"
    folder.mkdir()
    for source in sorted(DEMO_DIR.glob("*.dcm"))[:4]:
        shutil.copy(source, folder / source.name)
    session = ReviewSession.from_metadata(folder, scan_folder(folder).images)
    corrected, rejected, accepted, unreviewed = session.cases
    corrected.editor.begin_stroke()
    corrected.editor.paint([200, 260], [300, 300], radius=12, value=True)
    corrected.editor.end_stroke()
    session.set_status(rejected.image_id, ReviewStatus.REJECTED)
    ai_mask = np.zeros(accepted.shape, dtype=bool)
    ai_mask[400:500, 600:700] = True
    accepted.set_ai_result(0.9, ai_mask, True)
    session.set_status(accepted.image_id, ReviewStatus.ACCEPTED)
    session.save()
    segs, overlays = tmp_path / "segs", tmp_path / "overlays"

    assert main(["export", str(folder), "--seg-dir", str(segs), "--overlay-dir", str(overlays),
                 "--model", str(random_checkpoint)]) == 0

    assert sorted(path.name for path in segs.iterdir()) == sorted(
        f"{case.image_id}.seg.dcm" for case in (corrected, rejected, accepted))
    assert not (overlays / f"{unreviewed.image_id}.overlay.dcm").exists()
    expected = {corrected: ("MANUAL", corrected.editor.mask), rejected: ("MANUAL", np.zeros(rejected.shape, bool)),
                accepted: ("SEMIAUTOMATIC", ai_mask)}
    for case, (kind, mask) in expected.items():
        seg, overlay = segs / f"{case.image_id}.seg.dcm", overlays / f"{case.image_id}.overlay.dcm"
        _assert_valid(seg)
        _assert_valid(overlay)
        assert pydicom.dcmread(seg).SegmentSequence[0].SegmentAlgorithmType == kind
        np.testing.assert_array_equal(read_seg_mask(seg, case.path), mask)
        overlay_dataset = pydicom.dcmread(overlay)
        assert overlay_dataset.SourceImageSequence[0].ReferencedSOPInstanceUID == case.image_id
        assert is_valid_uid(overlay_dataset.SeriesInstanceUID)
        assert ("No pneumothorax" in overlay_dataset.ImageComments) == (case is rejected)
    algorithm = pydicom.dcmread(segs / f"{accepted.image_id}.seg.dcm").SegmentSequence[0]
    assert algorithm.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == \
        model_fingerprint(random_checkpoint)


def test_export_names_the_bundled_model_unless_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pneumoviewer.paths import default_model_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    folder = tmp_path / "studies"
    folder.mkdir()
    source = sorted(DEMO_DIR.glob("*.dcm"))[0]
    shutil.copy(source, folder / source.name)
    session = ReviewSession.from_metadata(folder, scan_folder(folder).images)
    (accepted,) = session.cases
    ai_mask = np.zeros(accepted.shape, dtype=bool)
    ai_mask[400:500, 600:700] = True
    accepted.set_ai_result(0.9, ai_mask, True)
    session.set_status(accepted.image_id, ReviewStatus.ACCEPTED)
    session.save()

    assert main(["export", str(folder), "--seg-dir", str(tmp_path / "segs")]) == 0

    segment = pydicom.dcmread(tmp_path / "segs" / f"{accepted.image_id}.seg.dcm").SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == \
        model_fingerprint(default_model_path())


def test_export_asks_for_an_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path)]) == 2
    assert "--seg-dir DIR" in capsys.readouterr().err
