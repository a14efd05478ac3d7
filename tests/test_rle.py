"""RLE in both conventions: the README's worked example, every real label row, random masks, bad text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pneumoviewer.io.rle import RleConvention, RleError, decode, encode, encode_lesions

SIZE = (1024, 1024)
ABSOLUTE, RELATIVE = RleConvention.ABSOLUTE, RleConvention.RELATIVE


def _label_rows(csv_path: Path) -> list[str]:
    """The EncodedPixels text of every row, as written (the file format is tested elsewhere)."""
    lines = csv_path.read_text().splitlines()[1:]
    return [line.split(",", 1)[1].strip() for line in lines if line]


def _worked_example() -> np.ndarray:
    column_major = np.zeros(25, dtype=bool)
    column_major[[6, 7, 17, 18, 19, 20]] = True
    return column_major.reshape(5, 5).T


def test_worked_example_from_the_data_readme() -> None:
    mask = _worked_example()
    assert encode(mask, RELATIVE) == "6 2 9 4"
    assert encode(mask, ABSOLUTE) == "7 2 18 4"
    np.testing.assert_array_equal(decode("6 2 9 4", (5, 5), RELATIVE), mask)
    np.testing.assert_array_equal(decode("7 2 18 4", (5, 5), ABSOLUTE), mask)


def test_relative_is_the_default_and_conventions_accept_plain_strings() -> None:
    mask = _worked_example()
    assert encode(mask) == "6 2 9 4"
    assert encode(mask, "absolute") == "7 2 18 4"
    np.testing.assert_array_equal(decode("7 2 18 4", (5, 5), "absolute"), mask)


def test_flattening_is_column_major_on_a_non_square_image() -> None:
    mask = np.zeros((2, 3), dtype=bool)
    mask[0, 1] = True  # column 1 starts at column-major offset 1 * 2 rows
    assert encode(mask, RELATIVE) == "2 1"
    assert encode(mask, ABSOLUTE) == "3 1"
    np.testing.assert_array_equal(decode("2 1", (2, 3)), mask)


def test_empty_masks_are_minus_one() -> None:
    assert encode(np.zeros(SIZE, dtype=bool)) == "-1"
    assert encode_lesions(np.zeros((3, 4), dtype=bool), ABSOLUTE) == ["-1"]
    for text in ("-1", " -1", ""):
        decoded = decode(text, (3, 4))
        assert decoded.shape == (3, 4) and decoded.dtype == bool and not decoded.any()


@pytest.mark.parametrize("dataset", ["siim", "siim-extra"])
def test_every_challenge_row_decodes_and_re_encodes_exactly(data_dir: Path, dataset: str) -> None:
    rows = _label_rows(data_dir / dataset / "train-rle.csv")
    assert len(rows) == {"siim": 1077, "siim-extra": 1248}[dataset]
    positive = 0
    for text in rows:
        mask = decode(text, SIZE, RELATIVE)
        assert encode(mask, RELATIVE) == text
        positive += text != "-1"
        # relative -> absolute -> relative is lossless, and absolute decodes to the same mask
        absolute = encode(mask, ABSOLUTE)
        from_absolute = decode(absolute, SIZE, ABSOLUTE)
        assert np.array_equal(from_absolute, mask)  # (assert_array_equal is 10x slower here)
        assert encode(from_absolute, RELATIVE) == text
    assert positive == {"siim": 225, "siim-extra": 1212}[dataset]


def test_lesions_are_8_connected_regions() -> None:
    mask = np.zeros((6, 6), dtype=bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal neighbours: one lesion with 8-connectivity
    mask[4:6, 3:6] = True
    lesions = encode_lesions(mask, RELATIVE)
    assert len(lesions) == 2
    union = np.logical_or.reduce([decode(text, mask.shape) for text in lesions])
    np.testing.assert_array_equal(union, mask)


def test_a_run_touching_the_last_pixel() -> None:
    mask = np.zeros((4, 3), dtype=bool)
    mask[-2:, -1] = True
    assert encode(mask, ABSOLUTE) == "11 2"
    assert encode(mask, RELATIVE) == "10 2"
    np.testing.assert_array_equal(decode("11 2", mask.shape, ABSOLUTE), mask)
    np.testing.assert_array_equal(decode("10 2", mask.shape, RELATIVE), mask)


_masks = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda shape: arrays(bool, shape, elements=st.booleans())
)


@settings(max_examples=300, deadline=None)
@given(mask=_masks, last_pixel=st.booleans(), convention=st.sampled_from(list(RleConvention)))
def test_random_masks_round_trip(mask: np.ndarray, last_pixel: bool, convention: RleConvention) -> None:
    mask = mask.copy()
    mask[-1, -1] = last_pixel
    text = encode(mask, convention)
    np.testing.assert_array_equal(decode(text, mask.shape, convention), mask)
    other = ABSOLUTE if convention is RELATIVE else RELATIVE
    assert encode(decode(encode(mask, other), mask.shape, other), convention) == text
    lesions = encode_lesions(mask, convention)
    decoded = [decode(lesion, mask.shape, convention) for lesion in lesions]
    np.testing.assert_array_equal(np.logical_or.reduce(decoded), mask)
    if mask.any():
        assert sum(int(part.sum()) for part in decoded) == int(mask.sum())  # lesions are disjoint


@pytest.mark.parametrize(
    ("text", "convention", "reason"),
    [
        ("6 2 9", RELATIVE, "odd number of values (3)"),
        ("6 2 x 4", RELATIVE, "'x' is not a whole number"),
        ("6 2 9.5 4", RELATIVE, "'9.5' is not a whole number"),
        ("-3 2", RELATIVE, "first start is negative"),
        ("6 2 -1 4", RELATIVE, "run 2 has a negative gap (-1): it overlaps the previous run"),
        ("6 0", RELATIVE, "run 1 has length 0"),
        ("6 2 9 -4", ABSOLUTE, "run 2 has length -4"),
        ("20 6", RELATIVE, "run 1 ends at pixel 26, past the end of a 5x5 image (25 pixels)"),
        ("0 2", ABSOLUTE, "run 1 starts at 0; absolute starts are 1-based"),
        ("7 4 9 1", ABSOLUTE, "run 2 overlaps or comes before the previous run"),
        ("18 4 7 2", ABSOLUTE, "run 2 overlaps or comes before the previous run"),
        ("25 2", ABSOLUTE, "run 1 ends at pixel 26, past the end"),
        ("3 2 26 1", RELATIVE, "value 26 is larger than a 5x5 image (25 pixels)"),
        ("1 9223372036854775807", ABSOLUTE, "far too large for an image"),
    ],
)
def test_malformed_text_is_rejected_with_the_reason(text: str, convention: RleConvention, reason: str) -> None:
    with pytest.raises(RleError) as raised:
        decode(text, (5, 5), convention)
    assert reason in raised.value.reason
    assert isinstance(raised.value, ValueError)


def test_masks_must_be_2d() -> None:
    with pytest.raises(ValueError, match="2-D"):
        encode(np.zeros((2, 2, 2), dtype=bool))


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="0123456789 -+x.", max_size=40),
    shape=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    convention=st.sampled_from(list(RleConvention)),
)
def test_any_text_decodes_or_raises_rle_error(text: str, shape: tuple[int, int], convention: RleConvention) -> None:
    try:
        mask = decode(text, shape, convention)
    except RleError as error:
        assert error.reason
    else:
        assert mask.shape == shape and mask.dtype == bool
        assert decode(encode(mask, convention), shape, convention).tolist() == mask.tolist()
