"""The header index kept with a session: an unchanged folder reopens without parsing its files again,
and whatever changed (a file written, replaced, added or removed; a damaged or foreign index) is read."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage.measure import label

import pneumoviewer.io.dicom as dicom
import pneumoviewer.io.header_index as header_index
from pneumoviewer.io.dicom import DicomMetadata
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.io.header_index import HeaderIndex, stamp_of
from pneumoviewer.review.case import Case, lesion_stats
from pneumoviewer.review.opening import open_studies
from pneumoviewer.review.session import session_store_for


def copy_siim(siim_dir: Path, folder: Path, count: int, skip: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[skip : skip + count]
    return [Path(shutil.copy2(source, folder / source.name)) for source in sources]


@pytest.fixture()
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files whose header is parsed (by the scan or by the index), in order."""
    calls: list[Path] = []
    real = dicom.read_header

    def counting(path: os.PathLike[str]) -> DicomMetadata:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(dicom, "read_header", counting)
    return calls


def headers(paths: list[Path], data: Path) -> list[DicomMetadata]:
    return sorted((case.metadata for case in open_studies(paths, data).session.cases if case.metadata),
                  key=lambda metadata: str(metadata.path))


def test_a_reopened_folder_is_listed_from_the_index_with_the_same_metadata(
    tmp_path: Path, siim_dir: Path, parsed: list[Path]
) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    files = copy_siim(siim_dir, folder / "series", 4)
    (folder / "notes.txt").write_text("not a DICOM")
    first = headers([folder], data)
    assert sorted(parsed) == files
    assert session_store_for([folder], data).headers_path.is_file()

    parsed.clear()
    again = headers([folder], data)
    assert parsed == []  # a stat per file, no DICOM parse
    assert again == first == scan_folder(folder).images  # equal fields, the paths as scanned
    assert all(type(metadata.pixel_spacing_mm) is tuple for metadata in again)


def test_a_file_written_or_replaced_since_is_read_again(tmp_path: Path, siim_dir: Path, parsed: list[Path]) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    touched, rewritten, replaced = copy_siim(siim_dir, folder, 3)
    other = copy_siim(siim_dir, tmp_path / "elsewhere", 1, skip=5)[0]
    headers([folder], data)
    parsed.clear()

    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 1_000_000_000))
    # The same bytes and mtime put back (as `cp -p` or a restored backup would): only the ctime tells.
    stamp = rewritten.stat()
    rewritten.write_bytes(rewritten.read_bytes())
    os.utime(rewritten, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    shutil.copyfile(other, replaced)  # another image under the same name
    again = {metadata.path: metadata for metadata in headers([folder], data)}
    assert sorted(parsed) == sorted([touched, rewritten, replaced])
    assert again[replaced].sop_instance_uid == dicom.read_header(other).sop_instance_uid
    assert list(again.values()) == scan_folder(folder).images


def test_files_removed_or_added_since_are_dropped_or_read(tmp_path: Path, siim_dir: Path, parsed: list[Path]) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    files = copy_siim(siim_dir, folder, 3)
    headers([folder], data)
    parsed.clear()

    files[1].unlink()
    added = copy_siim(siim_dir, folder / "new", 1, skip=3)[0]
    again = headers([folder], data)
    assert parsed == [added]
    assert [metadata.path for metadata in again] == sorted([files[0], files[2], added], key=str)
    index_path = session_store_for([folder], data).headers_path
    saved = json.loads(index_path.read_bytes().partition(b"\n")[2])["entries"]
    assert sorted(saved) == sorted(os.path.abspath(path) for path in (files[0], files[2], added))

    parsed.clear()
    headers([folder], data)
    assert parsed == []


def test_an_unreadable_file_is_never_kept_and_reported_each_time(tmp_path: Path, siim_dir: Path) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    copy_siim(siim_dir, folder, 2)
    broken = folder / "broken.dcm"
    broken.write_bytes(next(folder.glob("1*.dcm")).read_bytes()[:600])
    for _ in range(2):
        opened = open_studies([folder], data)
        assert len(opened.session) == 2 and [problem.path for problem in opened.unreadable] == [broken]


def rechecked(body: dict) -> bytes:
    """An index document with a valid checksum (what a damaged index with a lucky checksum would be)."""
    raw = json.dumps(body).encode()
    return header_index._checksum(raw).encode() + b"\n" + raw


@pytest.mark.parametrize("damage", ["garbage", "flipped byte", "absurd size", "wrong type", "old rules", "empty"])
def test_a_damaged_index_is_ignored_and_rebuilt(
    tmp_path: Path, siim_dir: Path, parsed: list[Path], damage: str
) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    files = copy_siim(siim_dir, folder, 3)
    expected = headers([folder], data)
    index_path = session_store_for([folder], data).headers_path
    saved = index_path.read_bytes()
    check, _, raw = saved.partition(b"\n")
    body = json.loads(raw)
    first = next(iter(body["entries"]))
    rows = 4 + header_index._FIELDS.index("rows")
    if damage == "garbage":
        index_path.write_bytes(os.urandom(2000))
    elif damage == "flipped byte":
        index_path.write_bytes(check + b"\n" + raw.replace(b'"MONOCHROME2"', b'"MONOCHROME1"', 1))
    elif damage == "absurd size":
        body["entries"][first][rows] = 10**9
        index_path.write_bytes(rechecked(body))
    elif damage == "wrong type":
        body["entries"][first][rows] = "1024"
        index_path.write_bytes(rechecked(body))
    elif damage == "old rules":
        body["rules"] = header_index.HEADER_RULES + 1
        index_path.write_bytes(rechecked(body))
    else:
        index_path.write_bytes(b"")
    parsed.clear()

    assert headers([folder], data) == expected
    assert sorted(parsed) == files  # every file read again
    assert index_path.read_bytes() == saved  # and the index rebuilt
    parsed.clear()
    headers([folder], data)
    assert parsed == []


def test_another_folders_index_gives_nothing_away(tmp_path: Path, siim_dir: Path, parsed: list[Path]) -> None:
    data = tmp_path / "data"
    first, second = tmp_path / "first", tmp_path / "second"
    copy_siim(siim_dir, first, 2)
    files = copy_siim(siim_dir, second, 2, skip=2)
    headers([first], data)
    foreign = session_store_for([second], data).headers_path
    foreign.parent.mkdir(parents=True)
    shutil.copyfile(session_store_for([first], data).headers_path, foreign)
    parsed.clear()
    listed = headers([second], data)
    assert sorted(parsed) == files
    assert listed == scan_folder(second).images


def test_an_index_that_cannot_be_written_does_not_stop_the_opening(
    tmp_path: Path, siim_dir: Path, parsed: list[Path]
) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    files = copy_siim(siim_dir, folder, 2)
    session_store_for([folder], data).headers_path.mkdir(parents=True)  # in the way of the file
    for _ in range(2):
        parsed.clear()
        assert len(open_studies([folder], data).session) == 2
        assert sorted(parsed) == files


def test_a_selection_keeps_its_own_index(tmp_path: Path, siim_dir: Path, parsed: list[Path]) -> None:
    folder, data = tmp_path / "study", tmp_path / "data"
    files = copy_siim(siim_dir, folder, 3)
    picked = [files[2], files[0]]
    first = headers(picked, data)
    parsed.clear()
    assert headers(picked, data) == first and parsed == []
    assert session_store_for(picked, data).headers_path.is_file()


def test_an_index_lists_what_it_read_and_only_that(tmp_path: Path, siim_dir: Path) -> None:
    files = copy_siim(siim_dir, tmp_path / "study", 2)
    index = HeaderIndex()
    assert not index.changed and index.lookup(files[0]) is None
    read = index.read(files[0])
    assert index.changed and index.lookup(files[0]) == read
    index.save(tmp_path / "headers.index")
    reloaded = HeaderIndex.load(tmp_path / "headers.index")
    assert reloaded.lookup(files[0]) == read and reloaded.lookup(files[1]) is None
    assert not reloaded.changed  # what it knew, listed again
    assert HeaderIndex.load(tmp_path / "nowhere").lookup(files[0]) is None


def test_a_stamp_changes_with_the_file_and_is_none_for_a_file_that_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "a.dcm"
    path.write_bytes(b"one")
    first = stamp_of(path)
    assert first == stamp_of(str(path)) and first is not None and first[0] == 3
    path.write_bytes(b"three")
    assert stamp_of(path) != first
    path.unlink()
    assert stamp_of(path) is None


# -- lesions measured within their box (the AI results restored on reopen) ------------------------


def test_lesions_measured_within_their_box_match_the_whole_film() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        mask = rng.random((64, 80)) > 0.97
        mask[0, 0] = mask[-1, -1] = bool(rng.integers(2))  # lesions on the edges of the film too
        expected = int(label(mask, connectivity=2, return_num=True)[1]) if mask.any() else 0
        stats = lesion_stats(mask, (0.5, 0.5))
        assert (stats.count, stats.area_px) == (expected, int(mask.sum()))
        case = Case("1.2.3", "Case 0001", mask.shape, pixel_spacing_mm=(0.5, 0.5))
        case.set_ai_result(0.9, mask, bool(mask.any()))
        assert case.ai_lesions() == stats
    assert lesion_stats(np.zeros((8, 8), dtype=bool), None).count == 0
    assert Case("1.2.4", "Case 0002", (8, 8)).ai_lesions() is None
