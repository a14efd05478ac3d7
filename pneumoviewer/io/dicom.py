"""DICOM radiographs as plain data: header-only metadata, display-ready pixels (folder scans: `folder_scan`).

Every problem with a file ends as one error type, `DicomError` (a `FileProblem`), naming the
file and the problem in plain words. Sizes are checked against a sane maximum and against the
pixel data actually present BEFORE anything is decoded, so a lying header never makes us
allocate gigabytes or hang.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments, generate_frames
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    SegmentationStorage,
)

from pneumoviewer.errors import FileProblem

# The largest single radiographs (full-field mammography, long-leg stitches) are around
# 25 megapixels; anything beyond these limits is a damaged or hostile header.
MAX_SIDE = 12_000
MAX_PIXELS = 40_000_000
# Percentiles for the default window when the file has none (SIIM files have none): the
# extremes of a radiograph are burned-in labels, collimator edges and black borders, so
# min/max would waste the grey range; 0.5 % / 99.5 % ignore those few pixels but keep the
# whole lung field, bones and mediastinum visible.
WINDOW_PERCENTILES = (0.5, 99.5)
GREYSCALE = ("MONOCHROME1", "MONOCHROME2")  # the photometric interpretations shown
_COLOUR = ("RGB", "YBR", "PALETTE", "HSV", "ARGB", "CMYK")
# Colour images are refused, not converted to grey: in a radiology archive they are Secondary
# Captures (screenshots and exports of a viewer), whose pixels are the viewer's window, zoom and
# annotations burned in, not the radiograph the model was validated on (docs/architecture.md, io).
_COLOUR_REFUSAL = ("only greyscale radiographs are read (a colour Secondary Capture is a viewer's screenshot, "
                   "not the film itself: open the original radiograph)")
_DICOM_MARKER_OFFSET = 128
# A dataset written without the Part 10 file header (no preamble, no "DICM", no file meta: old
# archives, some PACS exports) starts with its first element: group 0008 (or a file meta group
# 0002 without its preamble), little or big endian.
_RAW_DATASET_GROUPS = (0x0002, 0x0008)
_RAW_HEADER_DEFER_BYTES = 4096  # a raw header read leaves larger values (the pixels) on disk
_WARNINGS_LOCK = threading.Lock()
_UNDEFINED_LENGTH = 0xFFFFFFFF


class DicomError(FileProblem):
    """A file that cannot be shown as a radiograph; `reason` says why in plain words."""


class SegmentationFile(DicomError):
    """A DICOM Segmentation (a mask over a radiograph, `io.dicom_seg`): not an image to review, but
    a read to import; `folder_scan.scan_folder` lists it in `segmentations`, not among the unreadable files."""


@dataclass(frozen=True)
class DicomMetadata:
    path: Path
    sop_instance_uid: str
    study_instance_uid: str | None
    patient_age: str | None
    patient_sex: str | None
    view_position: str | None
    body_part: str | None
    study_date: str | None
    modality: str | None
    rows: int
    columns: int
    pixel_spacing_mm: tuple[float, float] | None  # (row spacing, column spacing)
    photometric: str
    transfer_syntax: str
    bits_stored: int
    # Patient Orientation (0020,0020) as stored, e.g. "L\\F": where the columns and rows point on the patient
    patient_orientation: str | None = None


@dataclass(frozen=True)
class DicomImage:
    metadata: DicomMetadata
    raw: np.ndarray  # float32 HxW after the Modality LUT, stored orientation
    window: tuple[float, float]  # default (center, width) in raw units
    invert: bool  # display inverted: MONOCHROME1, or MONOCHROME2 with an INVERSE Presentation LUT
    pixels: np.ndarray  # float32 HxW in [0, 1]: window applied, MONOCHROME1 inverted


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """True if the file carries the DICOM Part 10 marker ("DICM" at byte 128), whatever its name."""
    return _file_start(path, _DICOM_MARKER_OFFSET + 4)[_DICOM_MARKER_OFFSET:] == b"DICM"


def looks_like_dicom(path: str | os.PathLike[str]) -> bool:
    """A Part 10 file (`is_dicom_file`), or a raw dataset without the file header: one that starts
    with a group 0002/0008 element (little or big endian), which the readers then parse by force."""
    start = _file_start(path, _DICOM_MARKER_OFFSET + 4)
    return start[_DICOM_MARKER_OFFSET:] == b"DICM" or _starts_like_raw_dataset(start)


def _file_start(path: str | os.PathLike[str], size: int) -> bytes:
    """The first `size` bytes of a regular file (fewer if shorter); b"" for anything else or on error."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # opening a named pipe would wait forever
            return b""
        with open(path, "rb") as stream:
            return stream.read(size)
    except OSError:
        return b""


def _starts_like_raw_dataset(start: bytes) -> bool:
    if len(start) < 8:
        return False
    for order in ("little", "big"):
        group = int.from_bytes(start[0:2], order)
        element = int.from_bytes(start[2:4], order)
        if group in _RAW_DATASET_GROUPS and element < 0x1000:
            explicit_vr = start[4:6].isalpha() and start[4:6].isupper()
            implicit_length = int.from_bytes(start[4:8], order)
            return explicit_vr or implicit_length < 0x10000  # a first element is short (a few bytes of text)
    return False


def read_header(path: str | os.PathLike[str]) -> DicomMetadata:
    """Metadata of a single-frame greyscale image, without reading or decoding its pixels."""
    return _read_dataset(Path(path), with_pixels=False)[1]


def load_dicom(path: str | os.PathLike[str]) -> DicomImage:
    """Decode a radiograph to raw (Modality LUT applied) and display-ready pixels."""
    path = Path(path)
    dataset, metadata = _read_dataset(path, with_pixels=True)
    with _damage_reported_as(path, "the DICOM header is damaged"):
        _check_pixel_data(path, dataset, metadata)
    try:
        stored = _stored_pixels(dataset, metadata)
        raw = np.asarray(apply_modality_lut(stored, dataset), dtype=np.float32)
    except Exception as error:  # decoders raise many types; all mean the same to the user
        raise DicomError(path, f"the image data could not be decoded ({_short(error)})") from error
    if raw.shape != (metadata.rows, metadata.columns):
        raise DicomError(
            path, f"decoded image is {raw.shape}, the header says {metadata.rows}x{metadata.columns}"
        )
    window = _tag_window(dataset) or percentile_window(raw, _padding(dataset, stored))
    # MONOCHROME1 shows high values dark; an INVERSE Presentation LUT flips the display again.
    invert = (metadata.photometric == "MONOCHROME1") != (_text(dataset, "PresentationLUTShape") == "INVERSE")
    return DicomImage(metadata, raw, window, invert, apply_window(raw, window, invert))


def percentile_window(raw: np.ndarray, padding: np.ndarray | None = None) -> tuple[float, float]:
    """Default (center, width) from robust percentiles, for files without a VOI window.

    `padding` marks pixels that are not part of the image (DICOM Pixel Padding, e.g. outside
    the collimator) and are left out. Every other row and column (a quarter of the pixels)
    estimates these percentiles to within a grey level at a quarter of the cost.
    """
    sample = raw[::2, ::2]
    if padding is not None and not padding[::2, ::2].all():
        sample = sample[~padding[::2, ::2]]
    low, high = (float(value) for value in np.percentile(sample, WINDOW_PERCENTILES))
    return (low + high) / 2, (high - low) if high > low else 1.0  # a flat image: any width shows it


def apply_window(raw: np.ndarray, window: tuple[float, float], invert: bool) -> np.ndarray:
    """Map raw values to [0, 1] through a linear (center, width) window, inverted if asked."""
    center, width = window
    pixels = np.asarray(raw, dtype=np.float32) - np.float32(center - width / 2)
    pixels /= np.float32(width)
    np.clip(pixels, 0.0, 1.0, out=pixels)
    if invert:
        np.subtract(1.0, pixels, out=pixels)
    return pixels


def _stored_pixels(dataset: Dataset, metadata: DicomMetadata) -> np.ndarray:
    """The stored values, decoded by the pylibjpeg plugins, or by Pillow for JPEG Baseline.

    Pillow (libjpeg-turbo) decodes JPEG Baseline 2-3x faster than pylibjpeg, and it is the
    decoder of the PNG/JPEG training images too, so both sources come out of the same code.
    Should Pillow refuse a stream, pydicom's other decoders get their chance.
    """
    if metadata.transfer_syntax == JPEGBaseline8Bit:
        try:
            dataset.pixel_array_options(decoding_plugin="pillow")
            return dataset.pixel_array
        except Exception:  # noqa: BLE001 - whatever Pillow refuses, pydicom's other decoders may read
            dataset.pixel_array_options(decoding_plugin="")
    return dataset.pixel_array


def _not_a_file_reason(path: Path) -> str:
    try:
        path.stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as error:  # e.g. a symbolic link loop
        return f"cannot be read ({error.strerror})"
    return "is not a file"


def not_dicom_reason(path: Path) -> str:
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return "is not a regular file (a pipe, device or socket)"
        with open(path, "rb") as stream:  # a file we may not read must not be called "not a DICOM"
            if not stream.read(1):
                return "the file is empty"
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    return "not a DICOM file (no 'DICM' marker at byte 128, and no DICOM dataset at its start)"


def _read_dataset(path: Path, with_pixels: bool) -> tuple[Dataset, DicomMetadata]:
    if not path.is_file():
        raise DicomError(path, _not_a_file_reason(path))
    part10 = is_dicom_file(path)
    if not part10 and not looks_like_dicom(path):
        raise DicomError(path, not_dicom_reason(path))
    # pydicom warns, rather than fails, on values that break their VR (common in real archives,
    # e.g. `ID_...` SOP Instance UIDs) and when a file ends inside an element (it then returns
    # a partial dataset). Record its warnings instead of printing them, to report the latter as
    # the truncation it is. Warning filters are process-global, hence the lock around this
    # short parse (pixel decoding happens outside it).
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _BoundedFile(path) as stream:
                if part10:
                    dataset = pydicom.dcmread(stream, stop_before_pixels=not with_pixels)
                else:  # a raw dataset: its header is read with the pixels left on disk, to know they are there
                    dataset = pydicom.dcmread(stream, force=True,
                                              defer_size=None if with_pixels else _RAW_HEADER_DEFER_BYTES)
        except Exception as error:  # pydicom raises many types for damaged files
            raise DicomError(path, f"the DICOM header is damaged or truncated ({_short(error)})") from error
        with _damage_reported_as(path, "the DICOM header is damaged"):
            if any("end of file" in str(warning.message).lower() for warning in caught) or _cut_short(dataset):
                raise DicomError(path, "the file is truncated or damaged (it ends in the middle of an element)")
            if dataset.get("SOPClassUID") == SegmentationStorage:
                raise SegmentationFile(path, "is a DICOM Segmentation (a mask), not a radiograph")
            if not part10:
                _accept_raw_dataset(path, dataset)
            _check_image_header(path, dataset)
            return dataset, _metadata(path, dataset)


def _accept_raw_dataset(path: Path, dataset: Dataset) -> None:
    """A dataset without the file header is read only if it holds an image: its transfer syntax,
    which only the missing file meta would name, is the encoding pydicom found it in (never compressed)."""
    if "PixelData" not in dataset or not dataset.get("Rows") or not dataset.get("Columns"):
        raise DicomError(path, "is a DICOM dataset without the file header ('DICM' marker) and holds no image"
                         f"{f' ({modality})' if (modality := _text(dataset, 'Modality')) else ''}")
    if dataset.file_meta.get("TransferSyntaxUID") is None:
        implicit_vr, little_endian = dataset.original_encoding
        dataset.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit_vr else
                                               ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian)


class _BoundedFile(io.BufferedReader):
    """A file whose `read(n)` never asks for more than what is left in it.

    pydicom reads an element with `read(declared length)`, and Python allocates that many bytes
    up front: a damaged or hostile length field (4 GB) would allocate 4 GB before the short read
    shows the file is cut. Capped, it just reads the rest and reports the truncation.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(str(path), "rb"))  # pydicom quotes `.name` as text
        self._size = os.fstat(self.fileno()).st_size

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size > 0:
            size = min(size, max(self._size - self.tell(), 0))
        return super().read(size)


@contextmanager
def _damage_reported_as(path: Path, reason: str) -> Iterator[None]:
    """pydicom converts values lazily, so a damaged element fails wherever it is first read,
    with any exception type; report those as `reason` (DicomErrors pass through)."""
    try:
        yield
    except DicomError:
        raise
    except Exception as error:
        raise DicomError(path, f"{reason} ({_short(error)})") from error


def _cut_short(dataset: Dataset) -> bool:
    """True if the file ended before its last element's declared length (pydicom keeps the stub)."""
    if len(dataset) == 0:
        return True
    last = dataset.get_item(max(dataset.keys()), keep_deferred=True)  # raw: never converted
    value = getattr(last, "value", None)
    declared = getattr(last, "length", 0)
    return isinstance(value, bytes) and declared != _UNDEFINED_LENGTH and len(value) < declared


def _check_image_header(path: Path, dataset: Dataset) -> None:
    rows, columns = dataset.get("Rows"), dataset.get("Columns")
    if not rows or not columns:
        raise DicomError(path, "is not an image, or is truncated (no rows/columns in the header)")
    if rows > MAX_SIDE or columns > MAX_SIDE or rows * columns > MAX_PIXELS:
        raise DicomError(
            path, f"claims an absurd size ({rows}x{columns}); the limit is {MAX_PIXELS:,} pixels"
        )
    frames = _as_int(dataset.get("NumberOfFrames")) or 1
    if frames > 1:
        raise DicomError(path, f"is a multi-frame image ({frames} frames); only single radiographs are supported")
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip()
    samples = dataset.get("SamplesPerPixel", 1)
    if samples != 1 or photometric.startswith(_COLOUR):
        raise DicomError(
            path, f"is a colour image ({photometric or 'unknown'}, {samples} samples per pixel); "
            f"{_COLOUR_REFUSAL}"
        )
    if photometric not in GREYSCALE:
        raise DicomError(path, f"has an unknown photometric interpretation ({photometric[:40]!r})")
    bits_allocated, bits_stored = dataset.get("BitsAllocated"), dataset.get("BitsStored")
    if bits_allocated is None or bits_stored is None:
        raise DicomError(path, "is not an image, or is truncated (no bit depth in the header)")
    if bits_allocated not in (8, 16) or not bits_stored or not 1 <= bits_stored <= bits_allocated:
        raise DicomError(
            path, f"has {bits_stored} bits stored in {bits_allocated}; only 8- to 16-bit images are supported"
        )


def _check_pixel_data(path: Path, dataset: Dataset, metadata: DicomMetadata) -> None:
    """Compare the header's size with the pixel data present, before any decoding."""
    if "PixelData" not in dataset:
        raise DicomError(path, "has no pixel data (it is not an image, or it is truncated)")
    transfer_syntax = dataset.file_meta.get("TransferSyntaxUID")
    if transfer_syntax is None or not transfer_syntax.is_transfer_syntax:
        raise DicomError(path, f"has an unknown transfer syntax ({str(transfer_syntax)[:64] or 'none'})")
    data = dataset.PixelData
    needed = metadata.rows * metadata.columns * (dataset.BitsAllocated // 8)
    if not transfer_syntax.is_encapsulated:
        if len(data) < needed:
            raise DicomError(
                path, f"the pixel data is truncated ({len(data):,} of {needed:,} bytes)"
            )
        return
    try:
        frame = next(generate_frames(data, number_of_frames=1))
        # A header that says one frame over data holding several (each fragment opening a new codestream).
        codestreams = sum(fragment[:2] == b"\xff\xd8" or fragment[:4] == b"\xff\x4f\xff\x51"
                          for fragment in generate_fragments(data))
    except Exception as error:
        raise DicomError(path, f"the compressed pixel data is damaged ({_short(error)})") from error
    if codestreams > 1:
        raise DicomError(path, f"is a multi-frame image ({codestreams} frames); only single radiographs are supported")
    if not frame:
        raise DicomError(path, "has no pixel data (the compressed frame is empty)")
    # JPEG and JPEG 2000 codestreams end with an end marker (FFD9; writers pad after it with 00
    # or FF bytes). Decoders fill a cut-short image with grey without complaint, and half an
    # image must not be shown as a whole one.
    if frame[:2] in (b"\xff\xd8", b"\xff\x4f") and not frame.rstrip(b"\x00\xff").endswith(b"\xff\xd9"):
        raise DicomError(path, "the compressed image is cut short (no end marker)")
    encoded_size = _codestream_size(frame)
    if encoded_size is not None and encoded_size != (metadata.rows, metadata.columns):
        raise DicomError(
            path, f"the header says {metadata.rows}x{metadata.columns} but the compressed image "
            f"is {encoded_size[0]}x{encoded_size[1]}"
        )


def _codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(rows, columns) written inside a JPEG / JPEG-LS or JPEG 2000 codestream, if found."""
    if frame[:4] == b"\xff\x4f\xff\x51" and len(frame) >= 24:  # J2K: SOC then SIZ
        width, height, x_offset, y_offset = struct.unpack(">4I", frame[8:24])
        return height - y_offset, width - x_offset
    if frame[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 9 <= len(frame):
        if frame[position] != 0xFF:
            return None
        marker = frame[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = struct.unpack(">H", frame[position + 2 : position + 4])[0]
        # Start-of-frame markers (C0-CF except DHT C4, JPG C8, DAC CC) and JPEG-LS SOF55 (F7).
        if (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xF7:
            rows, columns = struct.unpack(">HH", frame[position + 5 : position + 9])
            return (rows, columns) if rows else None  # 0 rows: the height comes later (DNL marker)
        position += 2 + length
    return None


def _padding(dataset: Dataset, stored: np.ndarray) -> np.ndarray | None:
    """Pixels equal to Pixel Padding Value (or within its range limit), in stored values."""
    value, limit = _as_int(dataset.get("PixelPaddingValue")), _as_int(dataset.get("PixelPaddingRangeLimit"))
    if value is None:
        return None
    if limit is None:
        return stored == value
    return (stored >= min(value, limit)) & (stored <= max(value, limit))


def _tag_window(dataset: Dataset) -> tuple[float, float] | None:
    """The first Window Center/Width pair, else the input range of the first VOI LUT."""
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center is not None and width is not None:
        center, width = _first(center), _first(width)
        if center is not None and width is not None and width > 0:
            return float(center), max(float(width), 1.0)
    for item in dataset.get("VOILUTSequence", []):
        descriptor = item.get("LUTDescriptor")
        if descriptor and len(descriptor) == 3:
            # A VOI LUT is shown as the linear window over its input range: an approximation
            # for curved LUTs, but one the user can then adjust like any other window.
            entries = descriptor[0] or 65536
            return float(descriptor[1] + entries / 2), float(entries)
    return None


def _metadata(path: Path, dataset: Dataset) -> DicomMetadata:
    return DicomMetadata(
        path=path,
        sop_instance_uid=_text(dataset, "SOPInstanceUID") or path.stem,
        study_instance_uid=_text(dataset, "StudyInstanceUID"),
        patient_age=_text(dataset, "PatientAge"),
        patient_sex=_text(dataset, "PatientSex"),
        view_position=_text(dataset, "ViewPosition"),
        body_part=_text(dataset, "BodyPartExamined"),
        study_date=_text(dataset, "StudyDate"),
        modality=_text(dataset, "Modality"),
        rows=int(dataset.Rows),
        columns=int(dataset.Columns),
        pixel_spacing_mm=_spacing(dataset),
        photometric=str(dataset.PhotometricInterpretation).strip(),
        transfer_syntax=str(dataset.file_meta.get("TransferSyntaxUID", "")),
        bits_stored=int(dataset.BitsStored),
        patient_orientation=_orientation(dataset),
    )


def _spacing(dataset: Dataset) -> tuple[float, float] | None:
    """PixelSpacing, else ImagerPixelSpacing; None when absent or not two positive numbers."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            values = [float(value) for value in dataset.get(keyword) or []]
        except (TypeError, ValueError):
            continue
        if len(values) == 2 and all(0 < value < 10 for value in values):  # 0 or 10+ mm: not a real spacing
            return values[0], values[1]
    return None


def _orientation(dataset: Dataset) -> str | None:
    """Patient Orientation as "ROW\\COLUMN" direction codes (e.g. "L\\F"); None when absent, blank or odd."""
    try:
        value = dataset.get("PatientOrientation")
    except Exception:  # noqa: BLE001 - an invalid VR: unknown, as in `_text`
        return None
    values = value if isinstance(value, MultiValue) else str(value or "").split("\\")
    parts = [str(part).strip().upper() for part in values]
    return "\\".join(parts) if len(parts) == 2 and all(parts) else None


def _text(dataset: Dataset, keyword: str) -> str | None:
    """A header value as stripped text; None when missing or blank. Tolerates invalid VRs."""
    try:
        value = dataset.get(keyword)
    except Exception:  # noqa: BLE001 - a value that breaks its VR (real archives are messy) is just unknown
        return None
    text = str(value).strip() if value is not None else ""
    return text or None


def _first(value: Any) -> float | None:  # a header value: a number, text or a list of them
    try:
        return float(value[0] if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else value)
    except (TypeError, ValueError, IndexError):
        return None


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _short(error: Exception | Warning) -> str:
    """The first sentence of an exception's message (pydicom's can quote kilobytes of raw data)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.split(". ")[0][:160]
