"""Fuzzing the two text formats users bring from elsewhere: RLE strings and annotation CSVs.

Property-based (hypothesis) on arbitrary text and bytes: only `RleError` / `AnnotationError` may escape,
and whatever decodes re-encodes to the same mask. Coverage-guided (atheris, tests/fuzz/fuzz_inputs.py)
runs briefly here when atheris is installed; longer runs are for the command line. Case counts are printed.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pneumoviewer.io.annotations import AnnotationError, read_annotation_masks
from pneumoviewer.io.rle import RleConvention, RleError, decode, encode
from pneumoviewer.review.case import Case
from pneumoviewer.review.session import ReviewSession

FUZZ_HARNESS = Path(__file__).parent / "fuzz" / "fuzz_inputs.py"
_SHAPES = st.tuples(st.integers(1, 12), st.integers(1, 12))
_CONVENTIONS = st.sampled_from(list(RleConvention))
# Text that looks like RLE (numbers of every size and sign, odd separators) gets past the first checks.
_NUMBERS = st.integers(-(10**20), 10**20) | st.integers(-3, 150)
_RLE_LIKE = st.lists(st.one_of(_NUMBERS.map(str), st.sampled_from(["-1", "+7", " ", "\t", "\n", "x", "1e3", "٣"])),
                     max_size=16).map(" ".join)


def report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\nfuzz: {text}")


def check_decode(text: str, shape: tuple[int, int], convention: RleConvention) -> None:
    try:
        mask = decode(text, shape, convention)
    except RleError as error:
        assert error.reason
        return
    assert mask.shape == shape and mask.dtype == bool
    np.testing.assert_array_equal(decode(encode(mask, convention), shape, convention), mask)


def test_rle_decode_of_any_text_raises_only_rle_error(capsys: pytest.CaptureFixture[str]) -> None:
    cases = 0

    @settings(max_examples=1500, deadline=None)
    @given(text=st.text() | _RLE_LIKE, shape=_SHAPES, convention=_CONVENTIONS)
    def fuzz(text: str, shape: tuple[int, int], convention: RleConvention) -> None:
        nonlocal cases
        cases += 1
        check_decode(text, shape, convention)

    fuzz()
    report(capsys, f"RLE decode/encode on arbitrary text: {cases} hypothesis cases")


def _csv_like() -> st.SearchStrategy[bytes]:
    """Bytes that often get past the header: challenge-style rows of random ids and RLE-ish values."""
    header = st.sampled_from([b"ImageId, EncodedPixels", b"ImageId,EncodedPixels", b"\xef\xbb\xbfImageId,EncodedPixels",
                              b"imageid , encodedpixels", b"ImageId"])
    ids = st.sampled_from(["1.2.3.1", "1.2.3.2", "unknown", "", " ", '"1.2.3.1"', "é"])
    row = st.tuples(ids, _RLE_LIKE, st.sampled_from([",", ", ", ",,", ";", '","']), st.sampled_from(["\r\n", "\n", "\r", ""]))
    rows = st.lists(row.map(lambda parts: f"{parts[0]}{parts[2]}{parts[1]}{parts[3]}".encode()), max_size=6)
    return st.builds(lambda head, body: head + b"\r\n" + b"".join(body), header, rows)


def test_annotation_csv_import_of_any_bytes_raises_only_annotation_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the reader and through a review session's import (which must change nothing when it fails)."""
    path = tmp_path / "labels.csv"
    cases = 0

    @settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(content=st.binary(max_size=300) | _csv_like(), convention=_CONVENTIONS)
    def fuzz(content: bytes, convention: RleConvention) -> None:
        nonlocal cases
        cases += 1
        path.write_bytes(content)
        try:
            masks = read_annotation_masks(path, (6, 5), convention)
        except AnnotationError as error:
            assert error.path == path and error.reason
        else:
            assert all(mask.shape == (6, 5) and mask.dtype == bool for mask in masks.values())
        session = ReviewSession(tmp_path / "study", [Case(f"1.2.3.{n}", f"Case {n}", (6, 5)) for n in (1, 2)],
                                data_dir=tmp_path / f"data{cases}")
        try:
            summary = session.import_annotations(path, convention)
        except AnnotationError as error:
            assert error.path == path and error.reason
            assert all(case.mask is None for case in session.cases)
        else:
            assert summary.positive + summary.negative <= 2
        session.close()

    fuzz()
    report(capsys, f"annotation CSV import (reader and session) on arbitrary bytes: {cases} hypothesis cases")


def test_an_rle_longer_than_the_csv_modules_field_limit_reads_back(tmp_path: Path) -> None:
    """A fragmented mask (our own export can write one) exceeds the csv module's 128 kB field limit."""
    checkerboard = np.indices((1024, 1024)).sum(axis=0) % 2 == 1
    path = tmp_path / "large.csv"
    path.write_text(f"ImageId,EncodedPixels\n1.2.3.1,{encode(checkerboard)}\n")
    masks = read_annotation_masks(path)
    np.testing.assert_array_equal(masks["1.2.3.1"], checkerboard)


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed (pip install atheris)")
def test_the_atheris_harness_runs_clean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(FUZZ_HARNESS.parent / "seeds", corpus)
    runs = 3000
    result = subprocess.run([sys.executable, str(FUZZ_HARNESS), str(corpus), f"-runs={runs}", "-seed=7"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Done {runs} runs" in result.stderr
    report(capsys, f"atheris (coverage-guided) smoke run: {runs} inputs, corpus grew to {len(list(corpus.iterdir()))}")
