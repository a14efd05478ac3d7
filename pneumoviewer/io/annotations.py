"""Annotation CSVs in the SIIM-ACR challenge's own format, read tolerantly, written atomically.

A file is a header `ImageId, EncodedPixels` then one `image_id,rle` row per annotation;
`-1` means no pneumothorax and an image may have several rows (their union is its mask).
Writing follows ../shared/data/siim/train-rle.csv byte for byte: that header (with its
space), `id,rle` rows, CRLF line ends. Reading tolerates spaces around values and header
names (some copies of the challenge file have ` -1`), quotes, LF or CRLF, a UTF-8
byte-order mark and blank lines.
"""

from __future__ import annotations

import _csv
import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.atomic import atomic_write_chunks
from pneumoviewer.io.rle import RleConvention, RleError, decode, decode_rows, encode, encode_lesions

HEADER = "ImageId, EncodedPixels"
_LINE_END = "\r\n"
_SEPARATORS = ',"\r\n'  # would break the CSV layout inside a value


class AnnotationError(FileProblem, ValueError):
    """A malformed annotation file; `line` is 1-based with the header as line 1 (0 = whole file)."""

    def __init__(self, path: str | os.PathLike[str], line: int, reason: str) -> None:
        self.line = line
        super().__init__(path, reason, where=f"{Path(path)}, line {line}" if line else None)


def read_annotation_rows(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Every (image_id, encoded_pixels) row, stripped, in file order. Checks the layout only."""
    return [(image_id, encoded) for _, image_id, encoded in _read_numbered_rows(Path(path))]


def _read_numbered_rows(path: Path) -> list[tuple[int, str, str]]:
    """Rows with their 1-based line number (the header is line 1)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise AnnotationError(path, 0, "is not a text file (not UTF-8)") from None
    except OSError as error:
        raise AnnotationError(path, 0, f"cannot be read ({error.strerror})") from error
    # A fragmented mask's RLE outgrows the csv module's default field limit (128 kB); no field is
    # longer than the file. The limit is process-wide, so it only ever grows.
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    try:
        return _numbered_rows(path, reader)
    except csv.Error as error:
        raise AnnotationError(path, reader.line_num, f"not a readable CSV row ({error})") from error


def _numbered_rows(path: Path, reader: _csv.Reader) -> list[tuple[int, str, str]]:
    header = next(reader, None)
    if header is None:
        raise AnnotationError(path, 0, f"the file is empty; expected the header {HEADER!r}")
    if [name.strip().lower() for name in header] != ["imageid", "encodedpixels"]:
        raise AnnotationError(path, 1, f"the header is {','.join(header)!r}; expected {HEADER!r}")
    rows = []
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        if len(values) != 2:
            raise AnnotationError(
                path, reader.line_num, f"expected 2 values (ImageId, EncodedPixels), found {len(values)}"
            )
        image_id, encoded = (value.strip() for value in values)
        if not image_id:
            raise AnnotationError(path, reader.line_num, "the ImageId is empty")
        rows.append((reader.line_num, image_id, encoded))
    return rows


def read_annotation_masks(
    path: str | os.PathLike[str],
    shape: tuple[int, int] = (1024, 1024),
    convention: RleConvention = RleConvention.RELATIVE,
) -> dict[str, np.ndarray]:
    """Mask of every image (union of its rows), in first-appearance order.

    Raises AnnotationError naming the line of any row that is not valid RLE for `shape`.
    """
    path = Path(path)
    numbered = _read_numbered_rows(path)
    rows_by_image: dict[str, list[str]] = {}
    for _, image_id, encoded in numbered:
        rows_by_image.setdefault(image_id, []).append(encoded)
    try:
        return {image_id: decode_rows(rows, shape, convention) for image_id, rows in rows_by_image.items()}
    except RleError:
        # Name the first bad line in file order: that is how a person fixing the file reads it.
        for line, image_id, encoded in numbered:
            try:
                decode(encoded, shape, convention)
            except RleError as error:
                raise AnnotationError(path, line, f"image {image_id}: {error.reason}") from error
        raise


def write_annotation_masks(
    path: str | os.PathLike[str],
    masks: Mapping[str, np.ndarray],
    convention: RleConvention = RleConvention.RELATIVE,
) -> None:
    """Write one row per lesion (8-connected region) of each mask, `-1` for empty masks."""
    write_annotation_rows(
        path,
        ((image_id, encoded) for image_id, mask in masks.items() for encoded in encode_lesions(mask, convention)),
    )


def write_annotation_rows(path: str | os.PathLike[str], rows: Iterable[tuple[str, str]]) -> None:
    """Write (image_id, encoded_pixels) rows as they are, atomically, in the challenge's layout.

    The rows are streamed to the file (an archive's millions of rows are never held at once); a bad
    row raises ValueError and leaves any earlier file as it was."""
    atomic_write_chunks(path, (line.encode("utf-8") for line in _annotation_lines(rows)))


def _annotation_lines(rows: Iterable[tuple[str, str]]) -> Iterator[str]:
    yield HEADER + _LINE_END
    for image_id, encoded in rows:
        image_id, encoded = image_id.strip(), encoded.strip()
        if not image_id or any(character in image_id for character in _SEPARATORS):
            raise ValueError(f"not a valid ImageId for an annotation file: {image_id!r}")
        if any(character in encoded for character in _SEPARATORS):
            raise ValueError(f"not a valid EncodedPixels value for image {image_id}: {encoded[:40]!r}")
        yield f"{image_id},{encoded}{_LINE_END}"


def convert_annotation_file(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    to: RleConvention,
    shape: tuple[int, int] = (1024, 1024),
) -> list[tuple[str, str]]:
    """Re-encode every row of `source` from the other convention into `to`; returns the rows written.

    Rows stay rows (an annotation is never split into lesions or merged), in file order.
    Every row is checked before anything is written; `destination` may be `source`.
    """
    source = Path(source)
    to = RleConvention(to)
    origin = RleConvention.RELATIVE if to is RleConvention.ABSOLUTE else RleConvention.ABSOLUTE
    converted = []
    for line, image_id, encoded in _read_numbered_rows(source):
        try:
            mask = decode(encoded, shape, origin)
        except RleError as error:
            raise AnnotationError(source, line, f"image {image_id}: {error.reason}") from error
        converted.append((image_id, encode(mask, to)))
    write_annotation_rows(destination, converted)
    return converted
