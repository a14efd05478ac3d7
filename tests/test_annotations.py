"""Annotation CSVs: the challenge files read and re-written in their own layout, tolerance, errors, atomicity."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.annotations import (
    AnnotationError,
    read_annotation_masks,
    read_annotation_rows,
    write_annotation_masks,
    write_annotation_rows,
)
from pneumoviewer.io.atomic import atomic_write_text
from pneumoviewer.io.rle import RleConvention, decode, encode_lesions

FOUR_ROW_IMAGE = "1.2.276.0.7230010.3.1.4.8323329.307.1517875162.311533"


@pytest.mark.parametrize("dataset", ["siim", "siim-extra"])
def test_challenge_files_are_rewritten_byte_for_byte(data_dir: Path, tmp_path: Path, dataset: str) -> None:
    original = data_dir / dataset / "train-rle.csv"
    rows = read_annotation_rows(original)
    assert len(rows) == {"siim": 1077, "siim-extra": 1248}[dataset]
    write_annotation_rows(tmp_path / "copy.csv", rows)
    written = (tmp_path / "copy.csv").read_bytes()
    assert written.startswith(b"ImageId, EncodedPixels\r\n1.2.276.0.7230010.3.1.4.8323329.")
    assert written == original.read_bytes()
    assert read_annotation_rows(tmp_path / "copy.csv") == rows


def test_siim_labels_union_rows_per_image(siim_labels_csv: Path) -> None:
    rows = read_annotation_rows(siim_labels_csv)
    assert [image_id for image_id, _ in rows].count(FOUR_ROW_IMAGE) == 4
    masks = read_annotation_masks(siim_labels_csv)
    assert len(masks) == 1074
    assert sum(mask.any() for mask in masks.values()) == 222
    assert all(mask.shape == (1024, 1024) and mask.dtype == bool for mask in masks.values())
    parts = [decode(encoded, (1024, 1024)) for image_id, encoded in rows if image_id == FOUR_ROW_IMAGE]
    union = masks[FOUR_ROW_IMAGE]
    np.testing.assert_array_equal(union, np.logical_or.reduce(parts))
    assert sum(int(part.sum()) for part in parts) - int(union.sum()) == 29_465  # README: the rows overlap


def test_a_row_is_an_annotation_not_a_connected_region(siim_labels_csv: Path) -> None:
    positive_rows = [encoded for _, encoded in read_annotation_rows(siim_labels_csv) if encoded != "-1"]
    several_regions = [e for e in positive_rows if len(encode_lesions(decode(e, (1024, 1024)))) > 1]
    assert (len(positive_rows), len(several_regions)) == (225, 69)


@pytest.mark.parametrize("convention", list(RleConvention))
def test_masks_write_one_row_per_lesion_and_read_back(tmp_path: Path, convention: RleConvention) -> None:
    lesions = np.zeros((40, 30), dtype=bool)
    lesions[2:6, 3:8] = True
    lesions[20:30, 10:12] = True
    lesions[39, 29] = True  # the last pixel
    masks = {"two-lesions": lesions, "normal": np.zeros((40, 30), dtype=bool)}
    write_annotation_masks(tmp_path / "out.csv", masks, convention)
    rows = read_annotation_rows(tmp_path / "out.csv")
    assert [image_id for image_id, _ in rows] == ["two-lesions"] * 3 + ["normal"]
    assert rows[-1] == ("normal", "-1")
    assert (tmp_path / "out.csv").read_bytes().endswith(b"\r\nnormal,-1\r\n")
    back = read_annotation_masks(tmp_path / "out.csv", (40, 30), convention)
    assert back.keys() == masks.keys()
    for image_id, mask in masks.items():
        np.testing.assert_array_equal(back[image_id], mask)


def test_reading_tolerates_spaces_quotes_bom_lf_and_blank_lines(tmp_path: Path) -> None:
    text = '\ufeffImageId ,  EncodedPixels\n  a , 6 2 9 4 \n\n"b", -1\nc,\n'
    (tmp_path / "loose.csv").write_text(text, encoding="utf-8")
    assert read_annotation_rows(tmp_path / "loose.csv") == [("a", "6 2 9 4"), ("b", "-1"), ("c", "")]
    masks = read_annotation_masks(tmp_path / "loose.csv", (5, 5))
    assert int(masks["a"].sum()) == 6 and not masks["b"].any() and not masks["c"].any()


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("a,-1\nb,6 2 9\n", 3, "image b: odd number of values (3)"),
        ("a,-1\n\nb,6 2 x 4\n", 4, "image b: 'x' is not a whole number"),
        ("a,6 2 -1 4\n", 2, "negative gap (-1): it overlaps the previous run"),
        ("a,-3 2\n", 2, "the first start is negative"),
        ("a,20 6\n", 2, "past the end of a 5x5 image"),
        ("a,-1\nb,1,2\n", 3, "expected 2 values (ImageId, EncodedPixels), found 3"),
        ("a,-1\n ,6 2\n", 3, "the ImageId is empty"),
    ],
)
def test_malformed_rows_name_the_line_and_the_reason(tmp_path: Path, body: str, line: int, reason: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("ImageId, EncodedPixels\n" + body)
    with pytest.raises(AnnotationError) as raised:
        read_annotation_masks(path, (5, 5))
    assert (raised.value.path, raised.value.line) == (path, line)
    assert reason in raised.value.reason
    assert str(raised.value).startswith(f"{path}, line {line}: ")
    assert isinstance(raised.value, FileProblem) and isinstance(raised.value, ValueError)


def test_the_first_bad_line_in_the_file_is_named_when_an_image_has_rows_on_both_sides(tmp_path: Path) -> None:
    # Rows are merged per image, but a person fixing the file reads it top to bottom.
    path = tmp_path / "bad.csv"
    path.write_text("ImageId, EncodedPixels\na,0 2\nb,-1\nb,x 1\na,99 1\n")
    with pytest.raises(AnnotationError) as raised:
        read_annotation_masks(path, (5, 5))
    assert raised.value.line == 4 and "image b: 'x' is not a whole number" in raised.value.reason
    path.write_text("ImageId, EncodedPixels\na,0 2\nb,-1\na,3 1\nb,24 1\n")
    masks = read_annotation_masks(path, (5, 5))
    assert list(masks) == ["a", "b"]
    assert np.flatnonzero(masks["a"].T).tolist() == [0, 1, 3] and masks["b"].sum() == 1


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b"", 0, "the file is empty"),
        (b"id,rle\na,-1\n", 1, "the header is 'id,rle'; expected 'ImageId, EncodedPixels'"),
        (b"ImageId, EncodedPixels\n\xff\xfe\x00", 0, "is not a text file"),
    ],
)
def test_bad_files_are_annotation_errors(tmp_path: Path, content: bytes, line: int, reason: str) -> None:
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(AnnotationError) as raised:
        read_annotation_rows(tmp_path / "bad.csv")
    assert raised.value.line == line and reason in raised.value.reason


def test_a_missing_file_is_an_annotation_error(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="cannot be read"):
        read_annotation_rows(tmp_path / "missing.csv")


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "labels.csv"
    write_annotation_rows(target, [("a", "-1")])
    before = target.read_bytes()

    def crash(*_: object) -> None:
        raise OSError("disk unplugged")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk unplugged"):
        write_annotation_rows(target, [("a", "6 2"), ("b", "-1")])
    assert target.read_bytes() == before
    assert [path.name for path in tmp_path.iterdir()] == ["labels.csv"]  # no temporary left behind


def test_invalid_image_ids_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    target = tmp_path / "labels.csv"
    write_annotation_rows(target, [("a", "-1")])
    with pytest.raises(ValueError, match="not a valid ImageId"):
        write_annotation_rows(target, [("a", "-1"), ("b,c", "-1")])
    with pytest.raises(ValueError, match="not a valid EncodedPixels value for image b"):
        write_annotation_rows(target, [("a", "-1"), ("b", "1 2\n3 4")])
    assert read_annotation_rows(target) == [("a", "-1")]


def test_atomic_write_keeps_permissions_and_writes_text_as_given(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    atomic_write_text(target, "first\n")
    assert target.stat().st_mode & 0o777 == 0o644
    os.chmod(target, 0o600)
    atomic_write_text(target, "second\r\nline é\n")
    assert target.read_bytes() == "second\r\nline é\n".encode()
    assert target.stat().st_mode & 0o777 == 0o600


def test_convert_rle_command_round_trips_the_challenge_file(
    siim_labels_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumoviewer.cli import main

    absolute, relative = tmp_path / "absolute.csv", tmp_path / "relative.csv"
    assert main(["convert-rle", str(siim_labels_csv), str(absolute), "--to", "absolute"]) == 0
    assert "1077 rows (225 with a mask) written as absolute RLE" in capsys.readouterr().out
    original_rows, absolute_rows = read_annotation_rows(siim_labels_csv), read_annotation_rows(absolute)
    assert [i for i, _ in absolute_rows] == [i for i, _ in original_rows]  # rows stay rows
    assert absolute_rows[0][1].startswith("198004 12 ")  # 0-based 198003 -> 1-based 198004
    assert main(["convert-rle", str(absolute), str(relative), "--to", "relative", "--size", "1024x1024"]) == 0
    assert relative.read_bytes() == siim_labels_csv.read_bytes()


def test_convert_rle_command_reports_bad_rows_and_sizes(
    siim_labels_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pneumoviewer.cli import main

    out = tmp_path / "out.csv"
    assert main(["convert-rle", str(siim_labels_csv), str(out), "--to", "absolute", "--size", "512"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"pneumoviewer: {siim_labels_csv}, line 2: image ")
    assert "past the end of a 512x512 image" in error and not out.exists()
    assert main(["convert-rle", str(siim_labels_csv), str(out), "--to", "absolute", "--size", "5x"]) == 2
    assert "--size 5x: expected N or ROWSxCOLS" in capsys.readouterr().err


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(alphabet='ab1234 -,"\n\r\t\x00é', max_size=60))
def test_any_file_reads_or_raises_annotation_error(tmp_path: Path, body: str) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_text("ImageId, EncodedPixels\n" + body, encoding="utf-8")
    try:
        masks = read_annotation_masks(path, (3, 4))
    except AnnotationError as error:
        assert error.path == path and error.reason
    else:
        assert all(mask.shape == (3, 4) for mask in masks.values())
