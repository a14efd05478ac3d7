"""`pneumoviewer export PATH…`: the app's autosaved review (a folder or a selection), written as the challenge CSV and PNG masks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumoviewer.cli import main
from pneumoviewer.io.annotations import read_annotation_masks, read_annotation_rows
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.paths import demo_dir
from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.review.session import ReviewSession

DEMO_DIR = demo_dir()


@pytest.fixture
def reviewed_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ReviewSession]:
    """Three demo studies: one corrected with two separate strokes, one rejected, one left unreviewed."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    folder = tmp_path / "studies"
    folder.mkdir()
    for source in sorted(DEMO_DIR.glob("*.dcm"))[:3]:
        shutil.copy(source, folder / source.name)
    session = ReviewSession.from_metadata(folder, scan_folder(folder).images)
    corrected, rejected, _ = session.cases
    for row in (200, 700):
        corrected.editor.begin_stroke()
        corrected.editor.paint([row, row + 30], [300, 300], radius=12, value=True)
        corrected.editor.end_stroke()
    session.set_status(rejected.image_id, ReviewStatus.REJECTED)
    return folder, session


def test_export_writes_reviewed_cases_one_row_per_lesion(reviewed_folder, tmp_path: Path, capsys) -> None:
    folder, session = reviewed_folder
    corrected, rejected, unreviewed = session.cases
    out = tmp_path / "export.csv"
    pngs = tmp_path / "pngs"

    assert main(["export", str(folder), "--out", str(out), "--pngs", str(pngs)]) == 0

    rows = read_annotation_rows(out)
    assert [image_id for image_id, _ in rows].count(corrected.image_id) == 2  # two separate lesions
    assert (rejected.image_id, "-1") in rows
    assert unreviewed.image_id not in {image_id for image_id, _ in rows}
    masks = read_annotation_masks(out)
    np.testing.assert_array_equal(masks[corrected.image_id], corrected.editor.mask)
    png = np.asarray(Image.open(pngs / f"{corrected.image_id}.png"))
    np.testing.assert_array_equal(png == 255, corrected.editor.mask)
    assert "1 corrected, 1 rejected" in capsys.readouterr().out


def test_export_all_includes_unreviewed_and_absolute_rle_round_trips(reviewed_folder, tmp_path: Path) -> None:
    folder, session = reviewed_folder
    out = tmp_path / "all.csv"

    assert main(["export", str(folder), "--out", str(out), "--rle", "absolute", "--all"]) == 0

    from pneumoviewer.io.rle import RleConvention

    masks = read_annotation_masks(out, convention=RleConvention.ABSOLUTE)
    assert set(masks) == {case.image_id for case in session.cases}
    np.testing.assert_array_equal(masks[session.cases[0].image_id], session.cases[0].editor.mask)


def test_export_reports_a_missing_folder(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.csv")]) == 1
    assert "nowhere" in capsys.readouterr().err


def test_export_finds_the_session_of_a_selection_of_files(reviewed_folder, tmp_path: Path, capsys) -> None:
    """A reader who opened two files (not the folder) exports them by naming the same files, in any order."""
    from pneumoviewer.review.opening import open_studies

    folder, _ = reviewed_folder
    picked = sorted(folder.glob("*.dcm"))[:2]
    opened = open_studies(picked)
    first, second = opened.session.cases
    opened.session.set_status(second.image_id, ReviewStatus.REJECTED)
    opened.session.close()
    out = tmp_path / "selection.csv"

    assert main(["export", str(picked[1]), str(picked[0]), "--out", str(out)]) == 0

    assert read_annotation_rows(out) == [(second.image_id, "-1")]
    assert "2 files in" in capsys.readouterr().out
