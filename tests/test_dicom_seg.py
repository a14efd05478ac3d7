"""DICOM outputs: SEG and burned-in overlay objects over real SIIM, SIIM stage-2, CR and DX sources.

Every written object must pass `dciodvfy` (Debian `dicom3tools`) without an "Error" line, re-read
with pydicom and highdicom, and give back its mask pixel for pixel.
"""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from dicom_validation import dciodvfy_errors, needs_dciodvfy  # tests/dicom_validation.py

from pneumoviewer.io.annotations import read_annotation_masks
from pneumoviewer.io.dicom_derived import DicomOutputError, derivation_source, is_valid_uid
from pneumoviewer.io.dicom_overlay import overlay_caption, write_overlay
from pneumoviewer.io.dicom_seg import Algorithm, read_seg, read_seg_mask, write_seg

STAGE2 = "unlabelled/ID_025f1e40c.dcm"
CR_EDGE = "edge/cr-chest-jpeg2000-lossy-monochrome1-16bit.dcm"
ALGORITHM = Algorithm("PneumoViewer pneumothorax U-Net", "0123456789abcdef")


@pytest.fixture(scope="module")
def siim_positive(data_dir: Path) -> tuple[Path, np.ndarray]:
    """A SIIM Secondary Capture with its real labelled pneumothorax mask."""
    masks = read_annotation_masks(data_dir / "siim" / "train-rle.csv")
    for path in sorted((data_dir / "siim" / "dicom-images").rglob("*.dcm")):
        if masks.get(path.stem) is not None and masks[path.stem].any():
            return path, masks[path.stem]
    pytest.fail("no positive SIIM image with a label")


@pytest.fixture(scope="module")
def dx_source(siim_positive: tuple[Path, np.ndarray]) -> pydicom.Dataset:
    """A DX image (Imager Pixel Spacing only, no Pixel Spacing) made from a SIIM file's header."""
    dataset = pydicom.dcmread(siim_positive[0], stop_before_pixels=True)
    dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID = pydicom.uid.DigitalXRayImageStorageForPresentation
    dataset.Modality = "DX"
    dataset.ImagerPixelSpacing = dataset.PixelSpacing
    del dataset.PixelSpacing
    return dataset


def _box_mask(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    rows, columns = shape
    mask[rows // 5 : rows // 2, columns // 8 : columns // 3] = True
    mask[rows // 2 + 7, columns // 2] = True  # a single pixel: no smoothing or resampling on the way
    return mask


def _sources(data_dir: Path, siim_positive, dx_source) -> list[tuple[str, Path | pydicom.Dataset, np.ndarray]]:
    cr = pydicom.dcmread(data_dir / CR_EDGE, stop_before_pixels=True)
    stage2 = pydicom.dcmread(data_dir / STAGE2, stop_before_pixels=True)
    return [
        ("siim", siim_positive[0], siim_positive[1]),
        ("stage2", data_dir / STAGE2, _box_mask((stage2.Rows, stage2.Columns))),
        ("cr", data_dir / CR_EDGE, _box_mask((cr.Rows, cr.Columns))),
        ("dx", dx_source, _box_mask((dx_source.Rows, dx_source.Columns))),
    ]


@needs_dciodvfy
def test_ai_seg_is_valid_rereads_and_round_trips(data_dir: Path, siim_positive, dx_source, tmp_path: Path) -> None:
    for name, source, mask in _sources(data_dir, siim_positive, dx_source):
        written = write_seg(tmp_path / f"{name}.seg.dcm", source, mask, ALGORITHM)

        assert dciodvfy_errors(written.path) == [], name
        dataset = pydicom.dcmread(written.path)
        assert dataset.Modality == "SEG" and dataset.SOPInstanceUID == written.sop_instance_uid
        segment = dataset.SegmentSequence[0]
        assert segment.SegmentLabel == "Pneumothorax"
        assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "36118008"
        assert segment.SegmentAlgorithmType == "AUTOMATIC"
        algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == (ALGORITHM.name, ALGORITHM.version)
        assert dataset.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == \
            written.source_sop_instance_uid
        # highdicom's own reader refuses a Pixel Measures item without Slice Thickness, which is what a
        # projection radiograph has: read_seg handles that
        assert read_seg(written.path).number_of_segments == 1
        np.testing.assert_array_equal(read_seg_mask(written.path, source), mask, err_msg=name)


@needs_dciodvfy
def test_a_negative_read_is_an_empty_manual_segment(siim_positive, tmp_path: Path) -> None:
    path, mask = siim_positive
    written = write_seg(tmp_path / "negative.seg.dcm", path, np.zeros_like(mask), None)

    assert dciodvfy_errors(written.path) == []
    dataset = pydicom.dcmread(written.path)
    assert dataset.NumberOfFrames == 1  # the empty frame is kept: an explicit "no pneumothorax"
    assert dataset.SegmentSequence[0].SegmentAlgorithmType == "MANUAL"
    assert "SegmentationAlgorithmIdentificationSequence" not in dataset.SegmentSequence[0]
    assert not read_seg_mask(written.path, path).any()


def test_stage2_sources_get_valid_generated_uids_said_in_the_object(data_dir: Path, tmp_path: Path) -> None:
    source = data_dir / STAGE2
    original = pydicom.dcmread(source, stop_before_pixels=True)
    assert not is_valid_uid(original.SOPInstanceUID) and not original.StudyInstanceUID

    first = write_seg(tmp_path / "a.seg.dcm", source, np.zeros((1024, 1024), bool), None)
    second = write_seg(tmp_path / "b.seg.dcm", source, np.zeros((1024, 1024), bool), None)

    assert set(first.generated_uids) == {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"}
    assert first.source_sop_instance_uid == second.source_sop_instance_uid  # the same file, the same UID
    dataset = pydicom.dcmread(first.path)
    for uid in (dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID,
                first.source_sop_instance_uid):
        assert is_valid_uid(uid)
    assert dataset.StudyInstanceUID == derivation_source(source).dataset.StudyInstanceUID
    assert "generated" in dataset.DerivationDescription
    assert dataset.PatientAge.endswith("Y")  # SIIM's bare "48" would be an invalid Age String


def test_a_seg_of_another_image_is_refused(data_dir: Path, siim_positive, tmp_path: Path) -> None:
    path, mask = siim_positive
    written = write_seg(tmp_path / "other.seg.dcm", path, mask, ALGORITHM)
    with pytest.raises(DicomOutputError, match="does not refer to the source image"):
        read_seg_mask(written.path, data_dir / STAGE2)
    with pytest.raises(DicomOutputError, match="does not match the image"):
        write_seg(tmp_path / "bad.seg.dcm", path, mask[:10], ALGORITHM)


@needs_dciodvfy
def test_overlay_is_a_valid_derived_secondary_capture(data_dir: Path, siim_positive, tmp_path: Path) -> None:
    sources = [(siim_positive[0], siim_positive[1]), (data_dir / STAGE2, _box_mask((1024, 1024))),
               (data_dir / CR_EDGE, _box_mask((1955, 1841)))]
    for index, (source, mask) in enumerate(sources):
        caption = overlay_caption(True, 1234.0, int(mask.sum()), ALGORITHM.version)
        written = write_overlay(tmp_path / f"{index}.overlay.dcm", source, mask, caption)

        assert dciodvfy_errors(written.path) == [], source.name
        dataset = pydicom.dcmread(written.path)
        assert dataset.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert list(dataset.ImageType) == ["DERIVED", "SECONDARY"] and dataset.BurnedInAnnotation == "YES"
        assert dataset.SourceImageSequence[0].ReferencedSOPInstanceUID == written.source_sop_instance_uid
        assert dataset.SeriesInstanceUID != pydicom.dcmread(source, stop_before_pixels=True).SeriesInstanceUID
        assert is_valid_uid(dataset.StudyInstanceUID)
        assert dataset.ImageComments == caption and "12.3 cm2" in caption and "AI - not a diagnosis" in caption
        rgb = dataset.pixel_array
        assert rgb.shape == (*mask.shape, 3)
        cyan = (rgb[..., 0] == 0) & (rgb[..., 1] == 255) & (rgb[..., 2] == 255)
        assert cyan.any() and mask[cyan].all()  # the outline is drawn inside the mask, nowhere else
        assert hd.imread(written.path).SOPInstanceUID == written.sop_instance_uid
