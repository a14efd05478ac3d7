"""Coverage-guided fuzzing (atheris / libFuzzer) of RLE decoding and annotation-CSV import.

    cp -r tests/fuzz/seeds /tmp/corpus          # libFuzzer adds what it finds to the first folder
    python tests/fuzz/fuzz_inputs.py /tmp/corpus -runs=200000      # or -max_total_time=600

The first input byte picks the target and the RLE convention; the rest is the RLE text or the CSV
file's bytes (tests/fuzz/seeds/ has one of each). Only RleError / AnnotationError may escape: anything else is a crash that libFuzzer
reports with the input that caused it. libFuzzer prints the number of inputs run ("Done N runs").
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["pneumoviewer"]):
    from pneumoviewer.io.annotations import AnnotationError, read_annotation_masks
    from pneumoviewer.io.rle import RleConvention, RleError, decode, encode

_SHAPE = (7, 9)
# The CSV lives in memory (Linux memfd), so the many writes cost no disk and leave nothing behind.
_CSV_FD = os.memfd_create("labels.csv")
_CSV = Path(f"/proc/self/fd/{_CSV_FD}")


def fuzz_one_input(data: bytes) -> None:
    if not data:
        return
    selector, payload = data[0], data[1:]
    convention = list(RleConvention)[selector & 1]
    if selector & 2:
        text = payload.decode("utf-8", errors="replace")
        try:
            mask = decode(text, _SHAPE, convention)
        except RleError:
            return
        if not (decode(encode(mask, convention), _SHAPE, convention) == mask).all():
            raise AssertionError(f"{text!r} does not survive a round trip")
    else:
        os.ftruncate(_CSV_FD, 0)
        os.pwrite(_CSV_FD, payload, 0)
        try:
            read_annotation_masks(_CSV, _SHAPE, convention)
        except AnnotationError:
            return


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
