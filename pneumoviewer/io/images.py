"""One loader for every radiograph source: DICOM files and plain PNG/JPEG exports.

PNG/JPEG radiographs (the `siim-extra` training images) come out as the same `DicomImage`
as a DICOM, with the same default-window rule (robust percentiles, as for DICOMs without a
VOI window, which includes every SIIM file), so both sources look alike to the network.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pneumoviewer.io.dicom import (
    MAX_PIXELS,
    MAX_SIDE,
    DicomError,
    DicomImage,
    DicomMetadata,
    apply_window,
    load_dicom,
    looks_like_dicom,
    percentile_window,
)

_PLAIN_IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def load_radiograph(path: str | os.PathLike[str]) -> DicomImage:
    """Load a DICOM or a PNG/JPEG radiograph, recognised by content rather than by name.

    Raises DicomError (naming the file and the problem) for anything that is not a readable
    greyscale radiograph.
    """
    path = Path(path)
    if looks_like_dicom(path):  # a Part 10 file or a raw dataset
        return load_dicom(path)
    if _is_plain_image(path):
        return _load_plain_image(path)
    if path.is_file() and path.stat().st_size > 0 and os.access(path, os.R_OK):
        raise DicomError(path, "is not a DICOM, PNG or JPEG image")
    return load_dicom(path)  # which names the problem: no such file, a folder, an empty or unreadable file


def _is_plain_image(path: Path) -> bool:
    try:
        if not path.is_file():  # opening a named pipe would wait forever
            return False
        with open(path, "rb") as stream:
            head = stream.read(8)
    except OSError:
        return False
    return head.startswith(_PLAIN_IMAGE_SIGNATURES)


def _load_plain_image(path: Path) -> DicomImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                columns, rows = image.size
                if rows > MAX_SIDE or columns > MAX_SIDE or rows * columns > MAX_PIXELS:
                    raise DicomError(
                        path, f"claims an absurd size ({rows}x{columns}); the limit is {MAX_PIXELS:,} pixels"
                    )
                stored, bits = _grey(image)
    except DicomError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as error:
        raise DicomError(path, f"the image could not be decoded ({error})") from error
    raw = stored.astype(np.float32)
    window = percentile_window(raw)
    metadata = DicomMetadata(
        path=path,
        sop_instance_uid=path.stem,
        study_instance_uid=None,
        patient_age=None,
        patient_sex=None,
        view_position=None,
        body_part=None,
        study_date=None,
        modality=None,
        rows=rows,
        columns=columns,
        pixel_spacing_mm=None,
        photometric="MONOCHROME2",
        transfer_syntax="",  # not a DICOM: there is no transfer syntax
        bits_stored=bits,
    )
    return DicomImage(metadata, raw, window, False, apply_window(raw, window, False))


def _grey(image: Image.Image) -> tuple[np.ndarray, int]:
    """Grey levels and their bit depth; 16-bit PNGs keep their full range."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(image, dtype=np.int32), 16
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image), 8
