"""DICOM Segmentation (SEG) objects: one per reviewed radiograph, one segment "Pneumothorax".

The segment is SNOMED CT 36118008 "Pneumothorax" (category: Morphologically abnormal structure).
Who made the mask is said in the segment: the AI's masks are AUTOMATIC with the algorithm's name
and version (the model fingerprint); the reader's are MANUAL. A case without pneumothorax gets a
SEG whose segment is empty (`omit_empty_frames=False`): an explicit negative read, never silence.

Pitfalls measured on the real files: SIIM images are Secondary Capture with Pixel Spacing and no
Frame of Reference, DX images have Imager Pixel Spacing only, and highdicom reads back its own SEG
for such sources only when the Pixel Measures item is given (spacing, no slice thickness). Source
UIDs that are missing or invalid are generated (`io.dicom_derived`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pneumoviewer.io.dicom_derived import (
    DEVICE_SERIAL_NUMBER,
    MANUFACTURER,
    SOFTWARE_VERSION,
    DerivationSource,
    DicomOutputError,
    derivation_source,
    pixel_spacing_mm,
    write_derived,
)

PNEUMOTHORAX = Code("36118008", "SCT", "Pneumothorax")
SEGMENT_LABEL = "Pneumothorax"
AI_ALGORITHM_NAME = "PneumoViewer pneumothorax U-Net"  # how the SEG names the AI
_SEG_SERIES_NUMBER = 9101  # a fixed number for PneumoViewer's SEG series, clear of the modality's


@dataclass(frozen=True)
class Algorithm:
    """The AI that made a mask, as the SEG names it."""

    name: str
    version: str  # the model's version: its fingerprint (`model.identity.model_fingerprint`)


@dataclass(frozen=True)
class WrittenObject:
    path: Path
    sop_instance_uid: str
    source_sop_instance_uid: str  # as referenced (generated when the source's was invalid)
    generated_uids: tuple[str, ...]  # source UID attributes that had to be generated; () for none


def build_seg(source: DerivationSource, mask: np.ndarray, algorithm: Algorithm | None,
              reader_confirmed: bool = False) -> hd.seg.Segmentation:
    """The SEG of `mask` (bool, the source's rows x columns) over `source`.

    `algorithm` None: the reader's mask (MANUAL). With an algorithm: the AI's mask, AUTOMATIC, or
    SEMIAUTOMATIC when `reader_confirmed` (a reader accepted it as it is).
    """
    dataset = source.dataset
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (int(dataset.Rows), int(dataset.Columns)):
        raise DicomOutputError(Path(getattr(dataset, "filename", "") or "source"),
                               f"mask {mask.shape} does not match the image {dataset.Rows}x{dataset.Columns}")
    if algorithm is None:
        description = hd.seg.SegmentDescription(
            1, SEGMENT_LABEL, codes.SCT.MorphologicallyAbnormalStructure, PNEUMOTHORAX,
            hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    else:
        description = hd.seg.SegmentDescription(
            1, SEGMENT_LABEL, codes.SCT.MorphologicallyAbnormalStructure, PNEUMOTHORAX,
            hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC if reader_confirmed
            else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            hd.AlgorithmIdentificationSequence(algorithm.name, codes.DCM.ArtificialIntelligence, algorithm.version))
    spacing = pixel_spacing_mm(dataset)
    seg = hd.seg.Segmentation(
        source_images=[dataset],
        pixel_array=mask[np.newaxis, :, :],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=generate_uid(),
        series_number=_SEG_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER,
        software_versions=SOFTWARE_VERSION,
        device_serial_number=DEVICE_SERIAL_NUMBER,
        content_label="PNEUMOTHORAX",
        content_description="AI pneumothorax mask" if algorithm and not reader_confirmed
        else "Reader's pneumothorax read",
        pixel_measures=None if spacing is None else hd.PixelMeasuresSequence(list(spacing), None),
        omit_empty_frames=False,
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    # General Image's Patient Orientation is type 2C: copied when known, present but empty otherwise.
    seg.PatientOrientation = dataset.get("PatientOrientation", "")
    if source.note:
        seg.DerivationDescription = source.note
    return seg


def write_seg(path: Path, source: Path | Dataset, mask: np.ndarray, algorithm: Algorithm | None,
              reader_confirmed: bool = False) -> WrittenObject:
    """Write the SEG of `mask` over `source` (a DICOM file or its dataset) to `path`, atomically."""
    path = Path(path)
    prepared = derivation_source(source)
    seg = build_seg(prepared, mask, algorithm, reader_confirmed)
    write_derived(path, seg, "segmentation")
    return WrittenObject(path, str(seg.SOPInstanceUID), str(prepared.dataset.SOPInstanceUID), prepared.generated)


@dataclass(frozen=True)
class SegmentationRead:
    """The "Pneumothorax" segment of one SEG file, ready to give its mask per source image."""

    path: Path
    source_uids: tuple[str, ...]  # the SOP Instance UIDs of the images it segments
    by_our_ai: bool  # AUTOMATIC and named `AI_ALGORITHM_NAME`: written by `predict --seg-dir`
    _seg: hd.seg.Segmentation
    _segment: int

    def mask(self, source_uid: str) -> np.ndarray:
        """The mask (bool, the source's rows x columns) over the image `source_uid`, pixel for pixel."""
        if source_uid not in self.source_uids:
            raise DicomOutputError(self.path, f"does not refer to the source image {source_uid}")
        try:
            pixels = self._seg.get_pixels_by_source_instance([source_uid], segment_numbers=[self._segment],
                                                             combine_segments=False)
        except (ValueError, KeyError, AttributeError, IndexError) as error:
            raise DicomOutputError(self.path, f"its mask cannot be read ({error})") from error
        return np.asarray(pixels[0, :, :, 0], dtype=bool)


def open_seg(seg_path: Path) -> SegmentationRead:
    """Read a SEG file and find its "Pneumothorax" segment; raises `DicomOutputError` naming the file."""
    seg_path = Path(seg_path)
    seg = read_seg(seg_path)
    try:
        numbers = seg.get_segment_numbers(segment_label=SEGMENT_LABEL)
        if not numbers:
            raise DicomOutputError(seg_path, f'has no "{SEGMENT_LABEL}" segment')
        description = seg.get_segment_description(numbers[0])
        algorithm = description.algorithm_identification
        kind = getattr(description.algorithm_type, "value", description.algorithm_type)
        by_our_ai = (kind == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC.value
                     and algorithm is not None and str(algorithm[0].AlgorithmName) == AI_ALGORITHM_NAME)
        uids = tuple(dict.fromkeys(str(item[2]) for item in seg.get_source_image_uids()))
    except (ValueError, KeyError, AttributeError, IndexError, TypeError) as error:
        raise DicomOutputError(seg_path, f"not a readable DICOM Segmentation: {error}") from error
    return SegmentationRead(seg_path, uids, by_our_ai, seg, numbers[0])


def read_seg_mask(seg_path: Path, source: Path | Dataset) -> np.ndarray:
    """The "Pneumothorax" mask (bool, the source's rows x columns) that `seg_path` holds for `source`.

    The SEG must refer to this source instance (by its UID, or the one generated for it).
    """
    return open_seg(seg_path).mask(str(derivation_source(source).dataset.SOPInstanceUID))


def read_seg(seg_path: Path) -> hd.seg.Segmentation:
    """A SEG file as highdicom's object, including SEGs over projection radiographs (see below)."""
    try:
        return hd.seg.Segmentation.from_dataset(_without_thickless_pixel_measures(dcmread(seg_path)), copy=False)
    except (OSError, ValueError, AttributeError, InvalidDicomError) as error:
        raise DicomOutputError(seg_path, f"not a readable DICOM Segmentation: {error}") from error


def _without_thickless_pixel_measures(dataset: Dataset) -> Dataset:
    """Drop a shared Pixel Measures item without Slice Thickness, which highdicom refuses to read.

    Projection radiographs have a pixel spacing and no slice (ours and other writers' SEGs say so);
    reading the mask needs no geometry, so the item is dropped from the copy in memory only.
    """
    for group in dataset.get("SharedFunctionalGroupsSequence", []):
        measures = group.get("PixelMeasuresSequence")
        if measures and "SliceThickness" not in measures[0]:
            del group.PixelMeasuresSequence
    return dataset
