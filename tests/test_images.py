"""load_radiograph: DICOMs and the PNG/JPEG training images come out alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumoviewer.io.dicom import DicomError, load_dicom, percentile_window
from pneumoviewer.io.images import load_radiograph


@pytest.fixture(scope="module")
def extra_images(data_dir: Path) -> dict[str, Path]:
    folder = data_dir / "siim-extra" / "images"
    return {"jpg": min(folder.glob("*.jpg")), "png": min(folder.glob("*.png"))}


@pytest.mark.parametrize("kind", ["jpg", "png"])
def test_plain_images_load_like_a_siim_dicom(extra_images: dict[str, Path], kind: str) -> None:
    path = extra_images[kind]
    image = load_radiograph(path)
    metadata = image.metadata
    assert metadata.sop_instance_uid == path.stem and metadata.pixel_spacing_mm is None
    assert (metadata.rows, metadata.columns) == image.raw.shape == image.pixels.shape == (1024, 1024)
    assert metadata.photometric == "MONOCHROME2" and metadata.bits_stored == 8 and not image.invert
    assert image.raw.dtype == image.pixels.dtype == np.float32
    with Image.open(path) as source:
        np.testing.assert_array_equal(image.raw, np.asarray(source.convert("L"), dtype=np.float32))
    assert image.window == percentile_window(image.raw)  # the same rule as a SIIM DICOM
    assert 0.0 == image.pixels.min() and image.pixels.max() == 1.0


def test_a_dicom_goes_through_load_dicom(siim_dir: Path) -> None:
    path = min((siim_dir / "dicom-images").rglob("*.dcm"))
    by_radiograph, by_dicom = load_radiograph(path), load_dicom(path)
    assert by_radiograph.metadata == by_dicom.metadata
    np.testing.assert_array_equal(by_radiograph.pixels, by_dicom.pixels)


def test_the_format_is_recognised_by_content_not_by_name(extra_images: dict[str, Path], tmp_path: Path) -> None:
    shutil.copy(extra_images["png"], tmp_path / "scan")
    assert load_radiograph(tmp_path / "scan").raw.shape == (1024, 1024)


def test_sixteen_bit_png_keeps_its_range(tmp_path: Path) -> None:
    values = (np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) * 20).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    image = load_radiograph(tmp_path / "deep.png")
    np.testing.assert_array_equal(image.raw, values.astype(np.float32))
    assert image.metadata.bits_stored == 16


def test_a_damaged_png_is_a_dicom_error_naming_the_file(extra_images: dict[str, Path], tmp_path: Path) -> None:
    data = extra_images["png"].read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 3])
    with pytest.raises(DicomError, match="could not be decoded") as raised:
        load_radiograph(tmp_path / "cut.png")
    assert raised.value.path == tmp_path / "cut.png"


def test_something_else_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DicomError, match="is not a DICOM, PNG or JPEG image"):
        load_radiograph(tmp_path / "notes.txt")
    with pytest.raises(DicomError, match="no such file"):
        load_radiograph(tmp_path / "missing.png")
    (tmp_path / "empty.png").touch()
    with pytest.raises(DicomError, match="the file is empty"):
        load_radiograph(tmp_path / "empty.png")
