"""DICOM loading on the real SIIM files and edge cases, and every class of bad file built from them."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jpeg_lossless import encode_jpeg_lossless  # tests/jpeg_lossless.py
from PIL import Image
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, RLELossless

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.dicom import (
    DicomError,
    apply_window,
    load_dicom,
    percentile_window,
    read_header,
)
from pneumoviewer.io.folder_scan import scan_folder

MONOCHROME1_SOURCE_UID = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@pytest.fixture(scope="module")
def siim_files(siim_dir: Path) -> list[Path]:
    return sorted((siim_dir / "dicom-images").rglob("*.dcm"))


@pytest.fixture(scope="module")
def siim_file(siim_files: list[Path]) -> Path:
    """The SIIM image edge/monochrome1-siim.dcm was made from."""
    return next(path for path in siim_files if path.stem == MONOCHROME1_SOURCE_UID)


def _native_copy(source: Path, destination: Path, **attributes: object) -> Path:
    """Write `source` uncompressed, with header attributes overridden."""
    dataset = pydicom.dcmread(source)
    dataset.decompress(generate_instance_uid=False)
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    dataset.save_as(destination)
    return destination


def test_every_siim_header_has_the_documented_size_spacing_and_metadata(siim_dir: Path) -> None:
    scan = scan_folder(siim_dir)
    assert scan.unreadable == []
    assert len(scan.images) == 1074
    for metadata in scan.images:
        assert (metadata.rows, metadata.columns) == (1024, 1024)
        row_spacing, column_spacing = metadata.pixel_spacing_mm
        assert 0.139 <= row_spacing < 0.195 and row_spacing == column_spacing
        assert metadata.sop_instance_uid == metadata.path.stem
        assert metadata.modality == "CR" and metadata.photometric == "MONOCHROME2"
        assert metadata.transfer_syntax == JPEG_BASELINE and metadata.bits_stored == 8
        assert metadata.view_position in ("AP", "PA") and metadata.patient_sex in ("M", "F")
        assert metadata.patient_age and metadata.study_instance_uid and metadata.body_part == "CHEST"


@pytest.mark.slow
def test_every_siim_image_decodes_to_display_ready_pixels(siim_files: list[Path]) -> None:
    assert len(siim_files) == 1074
    for path in siim_files:
        image = load_dicom(path)
        assert image.raw.shape == image.pixels.shape == (1024, 1024)
        assert image.raw.dtype == image.pixels.dtype == np.float32
        assert 0.0 <= image.pixels.min() and image.pixels.max() <= 1.0 and not image.invert
        assert 0.0 <= image.raw.min() and image.raw.max() <= 255.0
        assert image.window == percentile_window(image.raw)  # SIIM files have no VOI window


def test_siim_pixels_match_pydicom_and_the_percentile_window(siim_file: Path) -> None:
    image = load_dicom(siim_file)
    frame = next(pydicom.encaps.generate_frames(pydicom.dcmread(siim_file).PixelData, number_of_frames=1))
    with Image.open(io.BytesIO(frame)) as jpeg:  # the decoder of the PNG/JPEG training images
        np.testing.assert_array_equal(image.raw, np.asarray(jpeg, dtype=np.float32))
    low, high = np.percentile(image.raw[::2, ::2], (0.5, 99.5))
    assert image.window == ((low + high) / 2, high - low)
    expected = np.clip((image.raw - low) / (high - low), 0, 1)
    np.testing.assert_allclose(image.pixels, expected, atol=1e-6)
    # Robust percentiles, not min/max: the window is narrower than the full 0-255 range.
    assert image.window[1] < image.raw.max() - image.raw.min()


def test_monochrome1_fixture_displays_as_the_inverse_of_its_source(siim_file: Path, edge_dir: Path) -> None:
    original = load_dicom(siim_file)
    inverted = load_dicom(edge_dir / "monochrome1-siim.dcm")
    assert inverted.invert and not original.invert
    assert inverted.metadata.photometric == "MONOCHROME1"
    np.testing.assert_array_equal(inverted.raw, original.raw)
    assert inverted.window == original.window
    np.testing.assert_allclose(inverted.pixels, 1.0 - original.pixels, atol=1e-6)


def test_an_inverse_presentation_lut_flips_the_display(siim_file: Path, edge_dir: Path, tmp_path: Path) -> None:
    original = load_dicom(siim_file)
    for source, name in ((siim_file, "inverse2.dcm"), (edge_dir / "monochrome1-siim.dcm", "inverse1.dcm")):
        dataset = pydicom.dcmread(source)
        dataset.PresentationLUTShape = "INVERSE"
        dataset.save_as(tmp_path / name)
    inverted = load_dicom(tmp_path / "inverse2.dcm")  # MONOCHROME2 + INVERSE: shown like MONOCHROME1
    assert inverted.invert
    np.testing.assert_allclose(inverted.pixels, 1.0 - original.pixels, atol=1e-6)
    assert not load_dicom(tmp_path / "inverse1.dcm").invert  # MONOCHROME1 + INVERSE: shown as stored


def test_jpeg2000_16bit_monochrome1_cr(edge_dir: Path) -> None:
    image = load_dicom(edge_dir / "cr-chest-jpeg2000-lossy-monochrome1-16bit.dcm")
    metadata = image.metadata
    assert image.raw.shape == image.pixels.shape == (1955, 1841)
    assert (metadata.rows, metadata.columns, metadata.bits_stored) == (1955, 1841, 15)
    assert metadata.transfer_syntax == "1.2.840.10008.1.2.4.91" and metadata.view_position == "PA"
    assert metadata.pixel_spacing_mm is None  # the file says 0.000\0.000: unknown, not zero
    assert image.invert and image.window == (15000.0, 30000.0)  # from Window Center/Width
    assert 0 <= image.raw.min() and image.raw.max() < 2**15
    np.testing.assert_allclose(image.pixels, 1.0 - np.clip(image.raw / 30000.0, 0, 1), atol=1e-6)


@pytest.mark.parametrize("transfer_syntax", [RLELossless, JPEG2000Lossless], ids=["rle", "jpeg2000"])
def test_lossless_encodings_decode_to_the_same_pixels(siim_file: Path, tmp_path: Path, transfer_syntax) -> None:
    native = _native_copy(siim_file, tmp_path / "native.dcm")
    dataset = pydicom.dcmread(native)
    dataset.compress(transfer_syntax, generate_instance_uid=False)
    dataset.save_as(tmp_path / "compressed.dcm")
    compressed = load_dicom(tmp_path / "compressed.dcm")
    assert compressed.metadata.transfer_syntax == transfer_syntax
    np.testing.assert_array_equal(compressed.raw, load_dicom(native).raw)


@pytest.mark.parametrize("bits_stored", [8, 12])
def test_jpeg_lossless_decodes_exactly(siim_file: Path, tmp_path: Path, bits_stored: int) -> None:
    crop = pydicom.dcmread(siim_file).pixel_array[400:464, 300:348].astype(np.uint16) << (bits_stored - 8)
    dataset = pydicom.dcmread(siim_file)
    dataset.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    dataset.Rows, dataset.Columns = crop.shape
    dataset.BitsAllocated = 8 if bits_stored == 8 else 16
    dataset.BitsStored, dataset.HighBit = bits_stored, bits_stored - 1
    dataset.PixelData = pydicom.encaps.encapsulate([encode_jpeg_lossless(crop, bits_stored)])
    dataset.save_as(tmp_path / "lossless.dcm")
    image = load_dicom(tmp_path / "lossless.dcm")
    assert image.metadata.transfer_syntax == JPEGLosslessSV1
    np.testing.assert_array_equal(image.raw, crop.astype(np.float32))


def test_16bit_modality_lut_window_tags_and_imager_spacing(siim_file: Path, tmp_path: Path) -> None:
    dataset = pydicom.dcmread(siim_file)
    stored = (dataset.pixel_array.astype(np.uint16) * 16)  # 12-bit values
    dataset.set_pixel_data(stored, "MONOCHROME2", 12, generate_instance_uid=False)
    dataset.RescaleSlope, dataset.RescaleIntercept = 2, -1024
    dataset.WindowCenter, dataset.WindowWidth = [1000, 500], [3000, 800]
    del dataset.PixelSpacing
    dataset.ImagerPixelSpacing = [0.2, 0.25]
    dataset.save_as(tmp_path / "ct-like.dcm")
    image = load_dicom(tmp_path / "ct-like.dcm")
    np.testing.assert_array_equal(image.raw, stored.astype(np.float32) * 2 - 1024)
    assert image.window == (1000.0, 3000.0)  # the first of several windows
    assert image.metadata.pixel_spacing_mm == (0.2, 0.25) and image.metadata.bits_stored == 12
    np.testing.assert_allclose(image.pixels, apply_window(image.raw, (1000.0, 3000.0), False))


def test_pixel_padding_is_left_out_of_the_percentile_window(siim_file: Path, tmp_path: Path) -> None:
    dataset = pydicom.dcmread(siim_file)
    stored = dataset.pixel_array.astype(np.uint16) + 100
    stored[:, :300] = 0  # a collimated band, marked as padding
    dataset.set_pixel_data(stored, "MONOCHROME2", 12, generate_instance_uid=False)
    dataset.save_as(tmp_path / "unpadded.dcm")
    dataset.add_new(0x00280120, "US", 0)  # Pixel Padding Value
    dataset.save_as(tmp_path / "padded.dcm")
    without_padding_tag = load_dicom(tmp_path / "unpadded.dcm")
    padded = load_dicom(tmp_path / "padded.dcm")
    assert padded.window == percentile_window(padded.raw[:, 300:])  # exactly the unpadded pixels
    assert without_padding_tag.window[1] > padded.window[1]  # the zeros stretched the window


def test_voi_lut_sequence_gives_the_window_over_its_input_range(siim_file: Path, tmp_path: Path) -> None:
    dataset = pydicom.dcmread(siim_file)
    lut = pydicom.Dataset()
    lut.LUTDescriptor = [100, 50, 8]
    lut.add_new(0x00283006, "US", list(range(100)))  # LUTData, 8-bit entries
    dataset.VOILUTSequence = [lut]
    dataset.save_as(tmp_path / "voi.dcm")
    assert load_dicom(tmp_path / "voi.dcm").window == (100.0, 100.0)


def test_a_file_without_dcm_extension_loads_and_is_found_by_the_scan(siim_file: Path, tmp_path: Path) -> None:
    (tmp_path / "study" / "series").mkdir(parents=True)
    shutil.copy(siim_file, tmp_path / "study" / "series" / "IM0001")
    shutil.copy(siim_file, tmp_path / "study" / "copy.dcm")
    (tmp_path / "study" / "report.txt").write_text("not an image")
    (tmp_path / "study" / "notes.dcm").write_text("not an image either")
    (tmp_path / "study" / ".hidden.dcm").write_text("macOS resource fork")
    (tmp_path / "broken.dcm").write_bytes(siim_file.read_bytes()[:600])  # cut inside the header
    assert load_dicom(tmp_path / "study" / "series" / "IM0001").raw.shape == (1024, 1024)
    progress: list[tuple[int, int]] = []
    scan = scan_folder(tmp_path, progress=lambda done, total: progress.append((done, total)))
    assert [m.path.name for m in scan.images] == ["copy.dcm", "IM0001"]
    assert {error.path.name: error.reason for error in scan.unreadable} == {
        "broken.dcm": "the file is truncated or damaged (it ends in the middle of an element)",
        "notes.dcm": "not a DICOM file (no 'DICM' marker at byte 128, and no DICOM dataset at its start)",
    }
    assert progress[-1] == (5, 5)


def test_scanning_something_that_is_not_a_folder(siim_file: Path) -> None:
    with pytest.raises(DicomError, match="is not a folder"):
        scan_folder(siim_file)


def _truncated(source: Path, folder: Path) -> Path:
    data = source.read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) // 2])
    return folder / "truncated.dcm"


def _truncated_native(source: Path, folder: Path) -> Path:
    data = _native_copy(source, folder / "native.dcm").read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) - 1000])
    return folder / "truncated.dcm"


def _no_pixel_data(source: Path, folder: Path) -> Path:
    dataset = pydicom.dcmread(source)
    del dataset.PixelData
    dataset.save_as(folder / "no-pixels.dcm")
    return folder / "no-pixels.dcm"


def _rgb(source: Path, folder: Path) -> Path:
    dataset = pydicom.dcmread(source)
    grey = dataset.pixel_array
    dataset.set_pixel_data(np.stack([grey, grey, grey], axis=-1), "RGB", 8)
    dataset.save_as(folder / "rgb.dcm")
    return folder / "rgb.dcm"


def _text_file(source: Path, folder: Path) -> Path:
    (folder / "report.dcm").write_text("Findings: no pneumothorax.\n" * 20)
    return folder / "report.dcm"


def _empty(source: Path, folder: Path) -> Path:
    (folder / "empty.dcm").touch()
    return folder / "empty.dcm"


def _multi_frame(source: Path, folder: Path) -> Path:
    return _native_copy(source, folder / "cine.dcm", NumberOfFrames=4)


def _absurd_size(source: Path, folder: Path) -> Path:
    dataset = pydicom.dcmread(source)
    dataset.Rows = dataset.Columns = 65535
    dataset.save_as(folder / "huge.dcm")
    return folder / "huge.dcm"


def _lying_size_native(source: Path, folder: Path) -> Path:
    return _native_copy(source, folder / "lying.dcm", Rows=4096, Columns=4096)


def _lying_size_jpeg(source: Path, folder: Path) -> Path:
    dataset = pydicom.dcmread(source)
    dataset.Rows = dataset.Columns = 4096
    dataset.save_as(folder / "lying.dcm")
    return folder / "lying.dcm"


def _with_frame(source: Path, folder: Path, edit) -> Path:
    dataset = pydicom.dcmread(source)
    frame = next(pydicom.encaps.generate_frames(dataset.PixelData, number_of_frames=1))
    dataset.PixelData = pydicom.encaps.encapsulate([edit(frame)])
    dataset.save_as(folder / "edited.dcm")
    return folder / "edited.dcm"


def _corrupt_jpeg(source: Path, folder: Path) -> Path:
    return _with_frame(source, folder, lambda frame: bytes(64) + frame[64:])


def _cut_short_jpeg(source: Path, folder: Path) -> Path:
    return _with_frame(source, folder, lambda frame: frame[: len(frame) // 2])


@pytest.mark.parametrize(
    ("make_bad_file", "reason", "header_readable"),
    [
        (_truncated, "the file is truncated", True),
        (_truncated_native, "the file is truncated", True),
        (_no_pixel_data, "has no pixel data", True),
        (_rgb, "is a colour image (RGB, 3 samples per pixel)", False),
        (_text_file, "not a DICOM file", False),
        (_empty, "the file is empty", False),
        (_multi_frame, "is a multi-frame image (4 frames)", False),
        (_absurd_size, "claims an absurd size (65535x65535)", False),
        (_lying_size_native, "the pixel data is truncated (1,048,576 of 16,777,216 bytes)", True),
        (_lying_size_jpeg, "the header says 4096x4096 but the compressed image is 1024x1024", True),
        (_corrupt_jpeg, "the image data could not be decoded", True),
        (_cut_short_jpeg, "the compressed image is cut short (no end marker)", True),
    ],
)
def test_bad_files_raise_one_error_naming_the_file_and_the_problem(
    siim_file: Path, tmp_path: Path, make_bad_file, reason: str, header_readable: bool
) -> None:
    bad_file = make_bad_file(siim_file, tmp_path)
    with pytest.raises(DicomError) as raised:
        load_dicom(bad_file)
    assert reason in raised.value.reason
    assert raised.value.path == bad_file
    assert str(raised.value) == f"{bad_file}: {raised.value.reason}"
    assert isinstance(raised.value, FileProblem)
    if header_readable:
        assert read_header(bad_file).rows in (1024, 4096)
    else:
        with pytest.raises(DicomError, match="absurd|colour|multi-frame|empty|not a DICOM"):
            read_header(bad_file)


def test_missing_file_is_a_dicom_error(tmp_path: Path) -> None:
    with pytest.raises(DicomError, match="no such file"):
        load_dicom(tmp_path / "missing.dcm")


def test_info_command_prints_the_metadata(siim_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from pneumoviewer.cli import main

    assert main(["info", str(siim_file)]) == 0
    text = capsys.readouterr().out
    assert f"SOP Instance UID:   {MONOCHROME1_SOURCE_UID}" in text
    assert "Pixel spacing:      0.168 x 0.168 mm" in text and "View position:      PA" in text
    assert "JPEG Baseline (Process 1) (1.2.840.10008.1.2.4.50)" in text
    assert main(["info", str(siim_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sop_instance_uid"] == MONOCHROME1_SOURCE_UID and info["pixel_spacing_mm"] == [0.168, 0.168]
    assert (info["patient_age"], info["patient_sex"], info["modality"]) == ("62", "M", "CR")
    assert (info["rows"], info["columns"], info["display_inverted"]) == (1024, 1024, False)


def test_info_command_names_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pneumoviewer.cli import main

    (tmp_path / "empty.dcm").touch()
    assert main(["info", str(tmp_path / "empty.dcm")]) == 1
    assert capsys.readouterr().err == f"pneumoviewer: {tmp_path / 'empty.dcm'}: the file is empty\n"


def test_unlabelled_files_with_nonstandard_uids_load_quietly(data_dir: Path, recwarn: pytest.WarningsRecorder) -> None:
    scan = scan_folder(data_dir / "unlabelled")
    assert len(scan.images) == 50 and scan.unreadable == []
    assert all(m.sop_instance_uid == m.path.stem and m.sop_instance_uid.startswith("ID_") for m in scan.images)
    assert load_dicom(scan.images[0].path).pixels.shape == (1024, 1024)
    assert not [w for w in recwarn if "pydicom" in w.filename]  # invalid-VR warnings are not printed


_PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"  # MIT-licensed, shipped with pydicom


@pytest.mark.parametrize(
    "name",
    ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
     "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_padded.dcm"],
)
@pytest.mark.filterwarnings("ignore:The pixel data is 8320 bytes long")  # pydicom notes the padding
def test_other_transfer_syntaxes_decode_to_the_same_pixels(name: str) -> None:
    reference = load_dicom(_PYDICOM_FILES / "MR_small.dcm")
    image = load_dicom(_PYDICOM_FILES / name)
    np.testing.assert_array_equal(image.raw, reference.raw)
    assert image.window == reference.window == (600.0, 1600.0)


def test_jpeg_extended_12_bit_with_padding_after_the_end_marker() -> None:
    image = load_dicom(_PYDICOM_FILES / "JPGExtended.dcm")  # its frame ends FF D9 FF
    assert image.raw.shape == (1024, 256) and image.metadata.bits_stored == 12
    assert image.metadata.transfer_syntax == "1.2.840.10008.1.2.4.51"
    assert 0 < image.raw.max() < 2**12


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(0, 170_000),
    damage=st.lists(st.tuples(st.integers(0, 1400), st.binary(min_size=1, max_size=8)), max_size=4),
)
def test_damaged_files_never_escape_as_anything_but_dicom_error(
    siim_file: Path, tmp_path: Path, cut: int, damage: list[tuple[int, bytes]]
) -> None:
    data = bytearray(siim_file.read_bytes()[:cut])
    for offset, garbage in damage:  # the header: lengths, tags, sizes, transfer syntax
        data[offset : offset + len(garbage)] = garbage
    path = tmp_path / "damaged.dcm"
    path.write_bytes(bytes(data))
    for reader in (read_header, load_dicom):
        try:
            result = reader(path)
        except DicomError as error:
            assert error.path == path and error.reason
        else:
            assert result is not None


def test_percentile_window_on_tiny_and_flat_ranges() -> None:
    ramp = np.linspace(0.0, 0.001, 400 * 400, dtype=np.float32).reshape(400, 400)  # e.g. a rescale slope of 1e-6
    center, width = percentile_window(ramp)
    assert center == pytest.approx(0.0005, rel=1e-2) and width == pytest.approx(0.00099, rel=1e-2)
    assert apply_window(ramp, (center, width), False).std() > 0.25  # the ramp stays visible
    assert percentile_window(np.full((8, 8), 7.0, dtype=np.float32)) == (7.0, 1.0)
