"""A corpus of hostile and broken DICOM files, built from real SIIM files (for tests/test_hostile_files.py).

`build_corpus(source, folder)` writes every file into `folder` and returns one `HostileFile` per
entry: what kind of damage it has and the words its `DicomError` reason must contain. Truncations
cut the source at every header element boundary (and inside each element) and across the pixel
data; byte flips damage random bytes with a fixed seed, so every run builds the same corpus.
`build_unreadable(source, folder)` adds a file and a folder without read permission: kept apart,
because they only stop a process that is not root.
"""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    generate_uid,
)

# Identifying values planted in the corpus, so privacy tests can look for them anywhere.
PATIENT_NAME = "Hostile^Harriet^Quux"
PATIENT_ID = "PID-HOSTILE-770101"
BIRTH_DATE = "19770101"

_LONG_LENGTH_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
_FLIPPED_FILES = 80
_PIXEL_DATA_CUTS = 24


@dataclass(frozen=True)
class HostileFile:
    path: Path
    kind: str  # the class of damage, e.g. "truncated", "byte flips", "lying size"
    reason: str | None  # words the DicomError reason must contain; None: any reason
    must_fail: bool = True  # False: damage no reader can detect (flips inside compressed pixels) may still load


def element_offsets(data: bytes) -> list[int]:
    """Start offsets of the explicit-VR little-endian elements from the file meta up to Pixel Data."""
    offsets, position = [], 132
    while position + 8 <= len(data):
        offsets.append(position)
        if data[position : position + 4] == _PIXEL_DATA_TAG:
            break
        vr = data[position + 4 : position + 6]
        if vr in _LONG_LENGTH_VRS:
            length = struct.unpack("<I", data[position + 8 : position + 12])[0]
            position += 12 + (0 if length == 0xFFFFFFFF else length)
        else:
            position += 8 + struct.unpack("<H", data[position + 6 : position + 8])[0]
    return offsets


def build_corpus(source: Path, folder: Path) -> list[HostileFile]:
    """Write the whole corpus (files, folders, links) into `folder`; `source` is a SIIM JPEG Baseline DICOM."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus: list[HostileFile] = []
    corpus += _truncations(source, folder)
    corpus += _byte_flips(source, folder)
    corpus += _header_lies(source, folder)
    corpus += _wrong_transfer_syntaxes(source, folder)
    corpus += _not_radiographs(source, folder)
    corpus += _not_files(folder)
    corpus += _plain_images(source, folder)
    return corpus


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _saved(dataset: Dataset, path: Path) -> Path:
    dataset.save_as(path, enforce_file_format=False)
    return path


def _identified(source: Path) -> Dataset:
    dataset = pydicom.dcmread(source)
    dataset.PatientName, dataset.PatientID, dataset.PatientBirthDate = PATIENT_NAME, PATIENT_ID, BIRTH_DATE
    return dataset


def _native(source: Path) -> Dataset:
    dataset = _identified(source)
    dataset.decompress(generate_instance_uid=False)
    return dataset


def _truncations(source: Path, folder: Path) -> list[HostileFile]:
    """Cut at every element start, one byte in, mid-value; across the pixel data; the native copy too."""
    data = _saved(_identified(source), folder / "identified.tmp").read_bytes()
    (folder / "identified.tmp").unlink()
    header_end = element_offsets(data)[-1]
    cuts = {0, 1, 64, 128, 130, 132}
    for start, end in zip(element_offsets(data), element_offsets(data)[1:] + [header_end + 12]):
        cuts.update((start, start + 1, start + 6, (start + end) // 2))
    frame_start = header_end + 12 + 8  # after the Pixel Data element header and the empty offset table item
    cuts.update(np.linspace(frame_start, len(data) - 1, _PIXEL_DATA_CUTS, dtype=int).tolist())
    cuts.update(len(data) - drop for drop in (1, 4, 7, 8, 9, 10))  # in the sequence delimiter, the end marker
    # Only the 8-byte sequence delimiter after the image lost: the image itself is whole and may load.
    corpus = [
        HostileFile(_write(folder, f"cut-{cut:06d}.dcm", data[:cut]), "truncated", None, cut < len(data) - 8)
        for cut in sorted(cut for cut in cuts if 0 <= cut < len(data))
    ]
    native = _saved(_native(source), folder / "native.tmp").read_bytes()
    (folder / "native.tmp").unlink()
    for cut in np.linspace(element_offsets(native)[-1] + 12, len(native) - 1, 8, dtype=int):
        corpus.append(HostileFile(_write(folder, f"cut-native-{cut:07d}.dcm", native[:cut]), "truncated", None))
    return corpus


def _byte_flips(source: Path, folder: Path) -> list[HostileFile]:
    """1-8 random bytes XORed, mostly in the header (where damage must be caught), some in the pixels."""
    data = source.read_bytes()
    header_end = element_offsets(data)[-1] + 12
    generator = random.Random(20260124)
    corpus = []
    for number in range(_FLIPPED_FILES):
        damaged = bytearray(data)
        limit = header_end if number % 4 else len(data)
        for _ in range(generator.randint(1, 8)):
            damaged[generator.randrange(limit)] ^= generator.randint(1, 255)
        # A flip can hit a byte nobody reads (a reserved field, a pixel value): such a file may load.
        corpus.append(HostileFile(_write(folder, f"flip-{number:03d}.dcm", bytes(damaged)), "byte flips", None, False))
    return corpus


def _edited(source: Path, folder: Path, name: str, native: bool = False, **attributes: object) -> Path:
    dataset = _native(source) if native else _identified(source)
    for keyword, value in attributes.items():
        if value is None:
            delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    return _saved(dataset, folder / name)


def _with_frames(source: Path, folder: Path, name: str, frames: list[bytes]) -> Path:
    dataset = _identified(source)
    empty_item = b"\xfe\xff\x00\xe0" + bytes(4)  # an item of length 0 (encapsulate() refuses empty frames)
    dataset.PixelData = encapsulate(frames) if any(frames) else empty_item * (1 + len(frames))
    return _saved(dataset, folder / name)


def _patched(source: Path, folder: Path, name: str, marker: bytes, at: int, value: bytes) -> Path:
    """The file with bytes at `marker`'s offset + `at` replaced: lengths pydicom would otherwise rewrite."""
    data = bytearray(source.read_bytes())
    position = data.index(marker) + at
    data[position : position + len(value)] = value
    return _write(folder, name, bytes(data))


def _header_lies(source: Path, folder: Path) -> list[HostileFile]:
    frame = next(generate_frames(pydicom.dcmread(source).PixelData, number_of_frames=1))
    native = _native(source)
    half_pixels = native.PixelData[: len(native.PixelData) // 2]
    four_gb = struct.pack("<I", 0xFFFFFFF0)
    entries = [
        (_edited(source, folder, "size-60000.dcm", Rows=60000, Columns=60000), "lying size", "claims an absurd size"),
        (_edited(source, folder, "size-60000-native.dcm", native=True, Rows=60000, Columns=60000),
         "lying size", "claims an absurd size"),
        (_edited(source, folder, "size-12000-square.dcm", Rows=12000, Columns=12000), "lying size", "absurd size"),
        (_edited(source, folder, "size-11000x3600-native.dcm", native=True, Rows=11000, Columns=3600),
         "lying size", "the pixel data is truncated"),
        (_edited(source, folder, "size-4096-jpeg.dcm", Rows=4096, Columns=4096), "lying size",
         "the header says 4096x4096 but the compressed image is 1024x1024"),
        (_edited(source, folder, "size-zero.dcm", Rows=0), "lying size", "no rows/columns"),
        (_patched(source, folder, "length-4gb-pixels.dcm", _PIXEL_DATA_TAG, 8, four_gb), "lying length", "truncated"),
        (_patched(source, folder, "length-4gb-meta.dcm", b"\x02\x00\x01\x00OB", 8, four_gb), "lying length",
         "truncated"),
        (_edited(source, folder, "bits-32.dcm", native=True, BitsAllocated=32, BitsStored=32, HighBit=31),
         "bit depth", "only 8- to 16-bit"),
        (_edited(source, folder, "bits-stored-0.dcm", BitsStored=0), "bit depth", "only 8- to 16-bit"),
        (_edited(source, folder, "samples-3-grey.dcm", SamplesPerPixel=3), "colour", "is a colour image"),
        (_edited(source, folder, "palette.dcm", PhotometricInterpretation="PALETTE COLOR"), "colour",
         "is a colour image"),
        (_edited(source, folder, "photometric-unknown.dcm", PhotometricInterpretation="XRAY9"), "photometric",
         "unknown photometric interpretation"),
        (_edited(source, folder, "no-pixel-data.dcm", PixelData=None), "missing pixel data", "has no pixel data"),
        (_edited(source, folder, "short-pixel-data.dcm", native=True, PixelData=half_pixels), "short pixel data",
         "the pixel data is truncated (524,288 of 1,048,576 bytes)"),
        (_with_frames(source, folder, "empty-frame.dcm", [b""]), "short pixel data", "no pixel data"),
        (_with_frames(source, folder, "frame-half.dcm", [frame[: len(frame) // 2]]), "short pixel data", "cut short"),
        (_with_frames(source, folder, "frame-zeroed.dcm", [bytes(len(frame))]), "damaged pixel data",
         "could not be decoded"),
        (_with_frames(source, folder, "two-frames.dcm", [frame, frame]), "multi-frame",
         "is a multi-frame image (2 frames)"),  # the header says one
        (_edited(source, folder, "multi-frame.dcm", native=True, NumberOfFrames=3,
                 PixelData=native.PixelData * 3), "multi-frame", "is a multi-frame image (3 frames)"),
    ]
    rgb = _identified(source)
    grey = rgb.pixel_array
    rgb.set_pixel_data(np.stack([grey, grey, grey], axis=-1), "RGB", 8, generate_instance_uid=False)
    entries.append((_saved(rgb, folder / "rgb.dcm"), "colour", "is a colour image (RGB, 3 samples per pixel)"))
    ybr = _identified(source)
    ybr.PhotometricInterpretation, ybr.SamplesPerPixel = "YBR_FULL_422", 3
    entries.append((_saved(ybr, folder / "ybr-jpeg.dcm"), "colour", "is a colour image"))
    del native.PixelData
    del native.Rows
    entries.append((_saved(native, folder / "no-rows.dcm"), "missing header", "no rows/columns"))
    return [HostileFile(path, kind, reason) for path, kind, reason in entries]


def _wrong_transfer_syntaxes(source: Path, folder: Path) -> list[HostileFile]:
    def relabelled(name: str, transfer_syntax: str, native: bool = False) -> Path:
        dataset = _native(source) if native else _identified(source)
        dataset.file_meta.TransferSyntaxUID = transfer_syntax
        return _saved(dataset, folder / name)

    jpeg_as_native = relabelled("jpeg-as-native.dcm", ExplicitVRLittleEndian)
    jpeg_as_j2k = relabelled("jpeg-as-j2k.dcm", JPEG2000Lossless)
    unknown = relabelled("unknown-syntax.dcm", "1.2.3.4.5.6.7")
    # The header written explicit but labelled implicit: every element is misread.
    explicit_as_implicit = _patched(
        jpeg_as_native, folder, "explicit-as-implicit.dcm", ExplicitVRLittleEndian.encode() + b"\x00",
        0, ImplicitVRLittleEndian.encode() + b"\x00\x00",
    )
    # Native pixels labelled compressed (RLE Lossless, a UID as long as the native one: pydicom refuses
    # to write that, so the UID's bytes are patched).
    native = relabelled("native.tmp", ExplicitVRLittleEndian, native=True)
    native_as_rle = _patched(native, folder, "native-as-rle.dcm", b"1.2.840.10008.1.2.1\x00", 0,
                             b"1.2.840.10008.1.2.5\x00")
    native.unlink()
    return [
        HostileFile(jpeg_as_native, "wrong transfer syntax", "the pixel data is truncated"),
        # Pillow recognises the JPEG by content and shows the right image: acceptable either way.
        HostileFile(jpeg_as_j2k, "wrong transfer syntax", None, False),
        HostileFile(unknown, "wrong transfer syntax", None),
        HostileFile(explicit_as_implicit, "wrong transfer syntax", None),
        HostileFile(native_as_rle, "wrong transfer syntax", "the compressed pixel data is damaged"),
    ]


def _document(sop_class: str, modality: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta, dataset.preamble = meta, bytes(128)
    dataset.SOPClassUID, dataset.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.Modality = modality
    dataset.PatientName, dataset.PatientID, dataset.PatientBirthDate = PATIENT_NAME, PATIENT_ID, BIRTH_DATE
    return dataset


def _not_radiographs(source: Path, folder: Path) -> list[HostileFile]:
    report = _document("1.2.840.10008.5.1.4.1.1.88.11", "SR")  # Basic Text SR
    report.ValueType, report.CompletionFlag = "CONTAINER", "COMPLETE"
    finding = Dataset()
    finding.ValueType, finding.TextValue = "TEXT", "Small left apical pneumothorax."
    report.ContentSequence = [finding]
    pdf = _document("1.2.840.10008.5.1.4.1.1.104.1", "DOC")  # Encapsulated PDF
    pdf.MIMETypeOfEncapsulatedDocument = "application/pdf"
    pdf.EncapsulatedDocument = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    entries = [
        (_saved(report, folder / "report-sr.dcm"), "not an image", "is not an image"),
        (_saved(pdf, folder / "report-pdf.dcm"), "not an image", "is not an image"),
        (_write(folder, "empty.dcm", b""), "empty", "the file is empty"),
        (_write(folder, "zeros.dcm", bytes(4096)), "not DICOM", "not a DICOM file"),
        (_write(folder, "text.dcm", b"Findings: no pneumothorax.\n" * 50), "not DICOM", "not a DICOM file"),
        (_write(folder, "marker-only.dcm", bytes(128) + b"DICM"), "truncated", None),
        (_write(folder, "png-named-dcm.dcm", b"\x89PNG\r\n\x1a\n" + bytes(64)), "not DICOM", "not a DICOM file"),
    ]
    return [HostileFile(path, kind, reason) for path, kind, reason in entries]


def _plain_images(source: Path, folder: Path) -> list[HostileFile]:
    """PNG/JPEG radiographs (load_radiograph reads them too) cut short, and a PNG claiming 60000x60000."""
    grey = Image.fromarray(pydicom.dcmread(source).pixel_array)
    corpus = []
    for image_format in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        grey.save(buffer, format=image_format)
        data = buffer.getvalue()
        for fraction in (0.02, 0.5, 0.98):
            name = f"cut-{fraction}.{image_format.lower()}"
            corpus.append(HostileFile(_write(folder, name, data[: int(len(data) * fraction)]), "truncated PNG/JPEG", None))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
    huge = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(bytes(60001) * 4)) + chunk(b"IEND", b"")
    corpus.append(HostileFile(_write(folder, "size-60000.png", huge), "lying size PNG", None))
    return corpus


def _not_files(folder: Path) -> list[HostileFile]:
    """Things named like DICOMs that are not files: a folder, link loops, a dangling link, a pipe, a device."""
    (folder / "folder.dcm").mkdir()
    (folder / "loop-a.dcm").symlink_to("loop-b.dcm")
    (folder / "loop-b.dcm").symlink_to("loop-a.dcm")
    (folder / "self-loop.dcm").symlink_to("self-loop.dcm")
    (folder / "dangling.dcm").symlink_to("nowhere/missing.dcm")
    (folder / "zero-device.dcm").symlink_to(os.devnull)
    os.mkfifo(folder / "pipe.dcm")
    (folder / "sub").mkdir()
    (folder / "sub" / "up.dcm").symlink_to("..", target_is_directory=True)  # a folder loop; walks must not follow
    return [
        HostileFile(folder / "folder.dcm", "folder named .dcm", "is not a file"),
        HostileFile(folder / "loop-a.dcm", "symlink loop", "cannot be read"),
        HostileFile(folder / "loop-b.dcm", "symlink loop", "cannot be read"),
        HostileFile(folder / "self-loop.dcm", "symlink loop", "cannot be read"),
        HostileFile(folder / "dangling.dcm", "dangling symlink", "no such file"),
        HostileFile(folder / "zero-device.dcm", "device", None),
        HostileFile(folder / "pipe.dcm", "named pipe", None),
    ]


def build_unreadable(source: Path, folder: Path) -> list[HostileFile]:
    """A good DICOM and a folder holding one, both mode 000 (unreadable to anyone but root)."""
    folder.mkdir(parents=True, exist_ok=True)
    locked_file = _write(folder, "locked.dcm", source.read_bytes())
    locked_folder = folder / "locked-folder"
    locked_folder.mkdir()
    _write(locked_folder, "inside.dcm", source.read_bytes())
    for path in (locked_file, locked_folder):
        path.chmod(0)
    return [
        HostileFile(locked_file, "unreadable", "cannot be read (Permission denied)"),
        HostileFile(locked_folder, "unreadable folder", "this folder cannot be read (Permission denied)"),
    ]
