"""A tiny JPEG Lossless (ITU T.81 process 14, selection value 1) encoder for test fixtures.

No library at hand writes this transfer syntax (1.2.840.10008.1.2.4.70), and no sample file
ships with the data, so tests build one from real SIIM pixels. Slow (a Python loop) and only
meant for small greyscale images.
"""

from __future__ import annotations

import struct

import numpy as np

# One Huffman code of 5 bits for each difference category 0..16: simple and always valid.
_CODE_LENGTH = 5
_CATEGORIES = 17


def encode_jpeg_lossless(image: np.ndarray, precision: int) -> bytes:
    """Codestream of a 2-D unsigned image with `precision` bits, predictor 1 (the pixel to the left)."""
    rows, columns = image.shape
    values = image.astype(np.int64)
    bits = _BitWriter()
    for row in range(rows):
        for column in range(columns):
            if row == 0 and column == 0:
                prediction = 1 << (precision - 1)
            elif column == 0:
                prediction = values[row - 1, 0]
            else:
                prediction = values[row, column - 1]
            difference = (int(values[row, column]) - int(prediction) + 32768) % 65536 - 32768
            category = 0 if difference == 0 else abs(difference).bit_length()
            bits.write(category, _CODE_LENGTH)  # canonical codes: category k has code k
            if category:
                extra = difference if difference > 0 else difference + (1 << category) - 1
                bits.write(extra, category)
    frame = struct.pack(">BHHB3B", precision, rows, columns, 1, 1, 0x11, 0)
    huffman = bytes([0x00]) + bytes(_CODE_LENGTH - 1) + bytes([_CATEGORIES])
    huffman += bytes(16 - _CODE_LENGTH) + bytes(range(_CATEGORIES))
    scan = bytes([1, 1, 0x00, 1, 0, 0])  # 1 component, table 0, predictor 1, Se 0, point transform 0
    return (
        b"\xff\xd8"
        + _segment(0xC3, frame)
        + _segment(0xC4, huffman)
        + _segment(0xDA, scan)
        + bits.stuffed_bytes()
        + b"\xff\xd9"
    )


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


class _BitWriter:
    def __init__(self) -> None:
        self._bits: list[str] = []

    def write(self, value: int, length: int) -> None:
        self._bits.append(format(value, f"0{length}b"))

    def stuffed_bytes(self) -> bytes:
        text = "".join(self._bits)
        text += "1" * (-len(text) % 8)  # pad the last byte with ones
        out = bytearray()
        for start in range(0, len(text), 8):
            byte = int(text[start : start + 8], 2)
            out.append(byte)
            if byte == 0xFF:
                out.append(0x00)  # byte stuffing: FF in entropy data is followed by 00
        return bytes(out)
