"""The burned-in overlay: a Secondary Capture for PACS viewers that cannot show a SEG.

The radiograph as displayed (its default window, MONOCHROME1 inverted) with the mask outline, each
lesion's box and label, and one caption line (finding, area, model version, "AI — not a diagnosis"),
RGB, in a new series of the source's study, derived from the source image (Source Image Sequence,
Image Type DERIVED\\SECONDARY, Burned In Annotation YES). Source UIDs that are missing or invalid are generated
(`io.dicom_derived`).
"""

from __future__ import annotations

from collections import abc
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pneumoviewer.io.dicom_derived import (
    AI_DISCLAIMER,
    MANUFACTURER,
    SOFTWARE_VERSION,
    DicomOutputError,
    derivation_source,
    pixel_spacing_mm,
    write_derived,
)
from pneumoviewer.io.dicom_seg import WrittenObject
from pneumoviewer.io.images import load_radiograph
from pneumoviewer.io.overlay import LesionLabel, overlay_picture

_OVERLAY_SERIES_NUMBER = 9102  # beside the SEG series (9101)
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def overlay_caption(positive: bool, area_mm2: float | None, area_px: int, model_version: str | None,
                    by_reader: bool = False) -> str:
    """The one caption line: finding, area, who made the mask (model version), and the disclaimer."""
    if positive:
        area = f"{area_mm2 / 100:.1f} cm2" if area_mm2 is not None else f"{area_px} px"
        finding = f"Pneumothorax, {area}"
    else:
        finding = "No pneumothorax"
    model = f"AI model {model_version[:12]}" if model_version else "AI model unknown"
    author = f"reader's mask ({model})" if by_reader and model_version else "reader's mask" if by_reader else model
    return f"{finding} | {author} | {AI_DISCLAIMER}"


def write_overlay(path: Path, source: Path, mask: np.ndarray, caption: str,
                  labels: abc.Sequence[LesionLabel] = ()) -> WrittenObject:
    """Write the overlay Secondary Capture of `mask` over the radiograph `source` to `path`, atomically;
    `labels`: each lesion's box and label (`review.lesions.lesion_labels`), burned in beside it."""
    path = Path(path)
    prepared = derivation_source(source)
    dataset = prepared.dataset
    radiograph = load_radiograph(source)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != radiograph.pixels.shape:
        raise DicomOutputError(source, f"mask {mask.shape} does not match the image {radiograph.pixels.shape}")
    rgb = np.asarray(overlay_picture(radiograph.pixels, mask, None, caption, labels))
    orientation = tuple(dataset.get("PatientOrientation") or ())
    spacing = pixel_spacing_mm(dataset)
    image = hd.sc.SCImage.from_ref_dataset(
        dataset, rgb, hd.PhotometricInterpretationValues.RGB, 8, hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=generate_uid(), series_number=_OVERLAY_SERIES_NUMBER, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer=MANUFACTURER,
        # highdicom insists on an orientation; an unknown one is written empty below (type 2: "unknown").
        patient_orientation=orientation if len(orientation) == 2 else ("L", "F"),
        pixel_spacing=spacing,  # type: ignore[arg-type]  # highdicom's hint says int; DICOM's value is a decimal
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    if len(orientation) != 2:
        image.PatientOrientation = []
    image.Laterality = dataset.get("Laterality", "")  # type 2C; a chest is not a paired body part
    image.ImageType = ["DERIVED", "SECONDARY"]
    image.BurnedInAnnotation = "YES"
    image.SoftwareVersions = SOFTWARE_VERSION
    image.SeriesDescription = f"PneumoViewer overlay ({AI_DISCLAIMER})"
    image.ImageComments = caption
    image.DerivationDescription = " ".join(filter(None, ["Mask outline and caption burned in.", prepared.note]))
    image.SourceImageSequence = Sequence([_source_item(dataset)])
    write_derived(path, image, "overlay")
    return WrittenObject(path, str(image.SOPInstanceUID), str(dataset.SOPInstanceUID), prepared.generated)


def _source_item(dataset: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = dataset.get("SOPClassUID", _SECONDARY_CAPTURE)
    item.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    purpose = hd.sr.CodedConcept("121322", "DCM", "Source image for image processing operation")
    item.PurposeOfReferenceCodeSequence = Sequence([purpose])
    return item
