"""A large folder's headers are parsed in child processes (`io.folder_scan`), with the same outcome as
in this thread: the same headers in the same order, the same unreadable files with the same reasons,
the same header index; a cancel stops the children, and a child that dies leaves its files to the scan."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

import pneumoviewer.io.folder_scan as folder_scan
from pneumoviewer.errors import Cancelled
from pneumoviewer.io.folder_scan import FolderScan, scan_folder
from pneumoviewer.io.header_index import HeaderIndex


@pytest.fixture()
def mixed_folder(tmp_path: Path, siim_dir: Path) -> Path:
    """Ten real SIIM files in two series, a truncated one, an empty .dcm, a text file and a hidden file."""
    folder = tmp_path / "study"
    sources = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:10]
    for number, source in enumerate(sources):
        series = folder / f"series{number % 2}"
        series.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, series / source.name)
    (folder / "series0" / "cut.dcm").write_bytes(sources[0].read_bytes()[:600])
    (folder / "series1" / "empty.dcm").write_bytes(b"")
    (folder / "notes.txt").write_text("not a DICOM")
    (folder / ".hidden.dcm").write_bytes(b"hidden")
    return folder


def outcome(scan: FolderScan) -> tuple[list, list[str], list[Path]]:
    return scan.images, [str(error) for error in scan.unreadable], scan.segmentations


def in_children(monkeypatch: pytest.MonkeyPatch, chunk: int = 3) -> None:
    """Children for any folder, in chunks small enough that this one makes several."""
    monkeypatch.setattr(folder_scan, "PARSE_IN_CHILDREN_FROM", 1)
    monkeypatch.setattr(folder_scan, "CHUNK", chunk)


def test_headers_parsed_in_children_are_those_read_here_in_the_same_order(
    mixed_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here_index = HeaderIndex()
    here = scan_folder(mixed_folder, index=here_index)
    assert len(here.images) == 10 and len(here.unreadable) == 2  # cut.dcm and empty.dcm, with their reasons
    in_children(monkeypatch)
    found: list = []
    children_index = HeaderIndex()
    children = scan_folder(mixed_folder, found=found.append, index=children_index)
    assert outcome(children) == outcome(here)
    assert found == children.images
    assert any("truncated" in reason for reason in outcome(children)[1])
    # The index learnt each header with its file's stamp: saved, both indexes are the same file.
    here_index.save(mixed_folder.parent / "here.index")
    children_index.save(mixed_folder.parent / "children.index")
    assert (mixed_folder.parent / "here.index").read_bytes() == (mixed_folder.parent / "children.index").read_bytes()


def test_a_reopened_folder_parses_only_its_new_files_in_the_children(
    mixed_folder: Path, siim_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_path = mixed_folder.parent / "headers.index"
    first = scan_folder(mixed_folder, index=HeaderIndex())
    index = HeaderIndex()
    scan_folder(mixed_folder, index=index)
    index.save(index_path)
    added = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[10]
    shutil.copy2(added, mixed_folder / "series1" / added.name)
    in_children(monkeypatch, chunk=4)
    asked: list[list[Path]] = []
    real = folder_scan.ProcessPoolExecutor.submit

    def recording(self, function, paths, *args, **kwargs):  # what goes to the children
        asked.append(list(paths))
        return real(self, function, paths, *args, **kwargs)

    monkeypatch.setattr(folder_scan.ProcessPoolExecutor, "submit", recording)
    again = scan_folder(mixed_folder, index=HeaderIndex.load(index_path))
    assert [metadata.path for metadata in again.images] == sorted(
        [metadata.path for metadata in first.images] + [mixed_folder / "series1" / added.name])
    sent = [path.name for paths in asked for path in paths]
    # Known headers come from the index; the damaged files are never indexed, so they are read again.
    assert added.name in sent and not set(sent) & {path.name for path in (m.path for m in first.images)}


def test_a_cancel_stops_the_scan_and_its_children(mixed_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    in_children(monkeypatch, chunk=2)

    def cancel_at_the_fifth(done: int, _total: int) -> None:
        if done == 5:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        scan_folder(mixed_folder, progress=cancel_at_the_fifth)
    deadline = time.monotonic() + 20
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()


def test_a_child_killed_mid_scan_leaves_its_files_to_the_scan(mixed_folder: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    expected = outcome(scan_folder(mixed_folder))
    in_children(monkeypatch, chunk=2)

    def kill_the_readers(done: int, _total: int) -> None:
        if done == 3:  # the first chunks are in flight or done; the rest would never come back
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)

    assert outcome(scan_folder(mixed_folder, progress=kill_the_readers)) == expected


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities here")
def test_the_children_give_way_to_the_process_that_started_them(mixed_folder: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """They run at a lower CPU priority than the scan's own process (the app's window), read the same."""
    expected = outcome(scan_folder(mixed_folder))
    in_children(monkeypatch)
    niceness: set[int] = set()

    def note_the_readers(done: int, _total: int) -> None:
        if done < 6:  # the readers have started (and set their priority) and sent chunks back
            return
        for child in multiprocessing.active_children():
            with open(f"/proc/{child.pid}/stat") as stat:  # field 19: the nice value
                niceness.add(int(stat.read().rsplit(")", 1)[1].split()[16]))

    assert outcome(scan_folder(mixed_folder, progress=note_the_readers)) == expected
    assert niceness == {min(os.nice(0) + folder_scan.READER_NICENESS, 19)}, f"the readers' nice values: {niceness}"
