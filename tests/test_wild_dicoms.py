"""DICOMs from the wild, on real files: raw datasets without the Part 10 header, CT/MR slices and other
body parts (a visible warning, scored only on request), colour Secondary Captures (refused, and why).

pydicom's own test files stand for other equipment; raw datasets are real SIIM radiographs written
the way old archives and some PACS exports write them (no preamble, no "DICM", no file meta).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import Qt
from ui_driver import WAIT_MS, open_and_wait

from pneumoviewer.cli import main
from pneumoviewer.io.ai_scope import ai_scope_warning
from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.dicom import DicomError, load_dicom, looks_like_dicom, read_header
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.io.images import load_radiograph
from pneumoviewer.ui.worklist import SCORE_COLUMN

make_window = ui_driver.make_window  # fixture
PYDICOM_FILES = Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent
RAW_ENCODINGS = {"implicit-le": (True, True), "explicit-le": (False, True), "explicit-be": (False, False)}


@pytest.fixture(scope="module")
def siim_file(siim_dir: Path) -> Path:
    return min((siim_dir / "dicom-images").rglob("*.dcm"))


@pytest.fixture(scope="module")
def raw_datasets(siim_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The SIIM radiograph as a bare dataset in each encoding, named without .dcm as old archives do."""
    folder = tmp_path_factory.mktemp("raw")
    written = {}
    for name, (implicit_vr, little_endian) in RAW_ENCODINGS.items():
        dataset = pydicom.dcmread(siim_file)
        dataset.decompress(generate_instance_uid=False)  # without file meta no transfer syntax can say "JPEG"
        del dataset.file_meta
        dataset.preamble = None
        written[name] = folder / f"IM{len(written):04d}"
        pydicom.dcmwrite(written[name], dataset, implicit_vr=implicit_vr, little_endian=little_endian,
                         enforce_file_format=False, force_encoding=True)
    return written


def test_raw_datasets_without_the_file_header_are_read_pixel_for_pixel(siim_file: Path, raw_datasets) -> None:
    original = pydicom.dcmread(siim_file)
    original.decompress(generate_instance_uid=False)
    for name, path in raw_datasets.items():
        assert path.read_bytes()[128:132] != b"DICM" and looks_like_dicom(path), name
        header = read_header(path)
        assert header.sop_instance_uid == original.SOPInstanceUID and header.modality == "CR"
        image = load_radiograph(path)
        np.testing.assert_array_equal(image.raw, original.pixel_array.astype(np.float32), err_msg=name)
    scan = scan_folder(next(iter(raw_datasets.values())).parent)
    assert len(scan.images) == 3 and scan.unreadable == []


def test_raw_datasets_without_an_image_and_non_dicom_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    for name, modality in (("ExplVR_BigEndNoMeta.dcm", "RTPLAN"), ("ExplVR_LitEndNoMeta.dcm", "RTPLAN"),
                           ("rtstruct.dcm", "RTSTRUCT")):
        with pytest.raises(DicomError) as refused:
            read_header(PYDICOM_FILES / name)
        assert refused.value.reason == ("is a DICOM dataset without the file header ('DICM' marker) and holds "
                                        f"no image ({modality})")
    lookalike = tmp_path / "report.dcm"  # starts like a group 0008 element, then nonsense
    lookalike.write_bytes(b"\x08\x00\x05\x00" + bytes(range(256)) * 4)
    with pytest.raises(DicomError):
        load_dicom(lookalike)
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(PYDICOM_FILES / "rtstruct.dcm", folder / "rtstruct")
    (folder / "notes.txt").write_text("not an image")
    scan = scan_folder(folder)
    assert scan.images == [] and [error.path.name for error in scan.unreadable] == ["rtstruct"]


def test_colour_secondary_captures_are_refused_saying_why() -> None:
    for name in ("SC_rgb_jpeg.dcm", "SC_rgb_rle.dcm", "SC_ybr_full_422_uncompressed.dcm"):
        with pytest.raises(DicomError) as refused:
            read_header(PYDICOM_FILES / name)
        assert "is a colour image" in refused.value.reason
        assert "a colour Secondary Capture is a viewer's screenshot, not the film itself" in refused.value.reason


def test_the_one_rule_for_what_the_ai_is_validated_for(siim_file: Path) -> None:
    chest = read_header(siim_file)
    assert (chest.modality, chest.body_part) == ("CR", "CHEST") and ai_scope_warning(chest) is None
    assert ai_scope_warning(read_header(PYDICOM_FILES / "CT_small.dcm")) == \
        "not a chest radiograph: CT — AI not validated"
    assert ai_scope_warning(read_header(PYDICOM_FILES / "MR_small.dcm")) == \
        "not a chest radiograph: MR — AI not validated"
    assert ai_scope_warning(read_header(PYDICOM_FILES / "J2K_pixelrep_mismatch.dcm")) == \
        "not a chest radiograph: CT, body part HEAD — AI not validated"
    assert ai_scope_warning(replace(chest, body_part="HAND")) == \
        "not a chest radiograph: body part HAND — AI not validated"
    for modality, body_part in (("DX", "Chest"), ("DR", "THORAX"), ("CR", None), (None, None), ("dx", "CHEST PA")):
        assert ai_scope_warning(replace(chest, modality=modality, body_part=body_part)) is None, (modality, body_part)


@pytest.fixture
def mixed_folder(tmp_path: Path, siim_file: Path) -> Path:
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(siim_file, folder / "chest.dcm")
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(PYDICOM_FILES / name, folder / name)
    return folder


@pytest.mark.usefixtures("private_onnx_cache")
def test_predict_skips_other_modalities_with_a_warning_and_scores_them_on_request(
    mixed_folder: Path, random_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "preds.csv"
    assert main(["predict", str(mixed_folder), "--model", str(random_checkpoint), "--out", str(out)]) == 0
    stderr = capsys.readouterr().err
    for name, modality in (("CT_small.dcm", "CT"), ("MR_small.dcm", "MR")):
        assert (f"pneumoviewer: {mixed_folder / name}: not a chest radiograph: {modality} — AI not validated; "
                "not scored (--score-unvalidated scores it)") in stderr
    chest_id = read_header(mixed_folder / "chest.dcm").sop_instance_uid
    assert {image_id for image_id, _ in read_annotation_rows(out)} == {chest_id}

    assert main(["predict", str(mixed_folder), "--model", str(random_checkpoint), "--out", str(out),
                 "--score-unvalidated"]) == 0
    stderr = capsys.readouterr().err
    ct_file = mixed_folder / "CT_small.dcm"
    assert f"{ct_file}: not a chest radiograph: CT — AI not validated; scored on request" in stderr
    assert len({image_id for image_id, _ in read_annotation_rows(out)}) == 3


def test_the_worklist_marks_a_ct_slice_and_scores_it_only_when_asked(qtbot, make_window, mixed_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, mixed_folder)
    model = window.worklist_model
    chest_id = read_header(mixed_folder / "chest.dcm").sop_instance_uid
    ct_id = read_header(mixed_folder / "CT_small.dcm").sop_instance_uid
    qtbot.waitUntil(lambda: model.row(chest_id).score is not None, timeout=WAIT_MS)
    ct_row = model.index(model.row_of(ct_id), SCORE_COLUMN)
    assert model.data(ct_row) == "⚠" and model.row(ct_id).score is None
    assert model.data(ct_row, Qt.ItemDataRole.ToolTipRole).startswith("not a chest radiograph: CT — AI not validated")
    # The chest's score can arrive a moment before its job is done: wait for the queue to go idle, then
    # check that it never took the CT.
    queue = window.controller.model_queue
    qtbot.waitUntil(lambda: not queue.pending() and not queue.running, timeout=WAIT_MS)
    assert model.row(ct_id).score is None

    window.controller.show_case(ct_id)
    qtbot.waitUntil(lambda: window.info.findings_box.values["AI score"].text().startswith("not scored"),
                    timeout=WAIT_MS)
    assert window.info.findings_box.values["AI score"].text() == (
        "not scored: not a chest radiograph: CT — AI not validated "
        "(Worklist ▸ Score images the AI is not validated for)")
    assert model.row(ct_id).score is None  # showing it did not run the AI either

    window.actions_by_name["score_unvalidated"].trigger()
    qtbot.waitUntil(lambda: model.row(ct_id).score is not None, timeout=WAIT_MS)
    assert model.data(ct_row).startswith("⚠ ")
    qtbot.waitUntil(lambda: "scored on request: " in window.info.findings_box.values["AI score"].text(),
                    timeout=WAIT_MS)

