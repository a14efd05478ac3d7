"""The headers of every DICOM image in a folder, read in child processes when there are many.

Parsing a header is Python work that holds the interpreter's lock (the GIL) for most of its few
milliseconds. In the app the scan runs on a worker thread beside the GUI thread, whose every call
into Python (each cell of the worklist it paints) then waits its turn: a folder of 10,000 new files
kept the window from repainting for 100-500 ms at a time while it was read. Above
`PARSE_IN_CHILDREN_FROM` files, the headers are therefore parsed in child processes, in chunks,
and only the small `DicomMetadata` records come back; this thread keeps the order, the header
index (`header_index`) and the callbacks. The first chunk is read here while the children start,
so the first rows do not wait for them.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from pneumoviewer.errors import ProgressCallback
from pneumoviewer.io import dicom
from pneumoviewer.io.dicom import DicomError, DicomMetadata, SegmentationFile, looks_like_dicom, not_dicom_reason
from pneumoviewer.io.header_index import FileStamp, HeaderIndex, stamp_of

PARSE_IN_CHILDREN_FROM = 500  # files; below it starting the children costs more than they save
CHUNK = 64  # files per task: ~0.2 s of parsing, so results stream back and a cancel is quick
MAX_READERS = 4  # child processes at most; a header scan is bounded by the disk beyond that
# The children give way to the process that started them (the app's window, an export's progress bar) when both
# want a core: on 2 cores the window's thread waited up to 60 ms for one while a reader and the scan's thread ran.
READER_NICENESS = 10


@dataclass(frozen=True)
class FolderScan:
    images: list[DicomMetadata] = field(default_factory=list)
    unreadable: list[DicomError] = field(default_factory=list)
    segmentations: list[Path] = field(default_factory=list)  # DICOM SEG files (masks to import), path order


class CandidateKind(enum.Enum):
    """What a file met in a folder is when it is neither an image header nor an error."""

    SEGMENTATION = "a DICOM Segmentation (a mask to import, not an image)"
    IGNORED = "not a DICOM file and not named .dcm (reports, thumbnails): skipped silently"


Verdict = DicomMetadata | DicomError | CandidateKind


def scan_folder(
    folder: str | os.PathLike[str],
    progress: ProgressCallback | None = None,
    found: Callable[[DicomMetadata], None] | None = None,
    index: HeaderIndex | None = None,
) -> FolderScan:
    """Headers of every DICOM image under `folder` (recursive, sorted by path).

    Files that are not DICOM (`looks_like_dicom`: neither the marker nor the start of a raw dataset)
    are skipped silently (reports, thumbnails, hidden files), except `.dcm` files, which are reported.
    Unreadable DICOMs are listed in `unreadable` with the reason; they never stop the scan. `progress(done, total)` is
    called once the files are listed (done 0), then after each file; an exception it raises (a cancel) stops the
    scan and propagates.
    `found(metadata)` is called with each header as soon as it is read (a window lists the
    studies of a large folder while the scan goes on). With an `index` (`header_index`),
    a file unchanged since it was read before is not parsed again, and each file read is
    added to it. DICOM Segmentations are listed in `segmentations` (their headers are not indexed).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DicomError(folder, "is not a folder")
    scan = FolderScan()
    candidates = list(visible_files(folder, scan.unreadable.append))
    if progress is not None:
        progress(0, len(candidates))
    # Closed on the way out, a cancel included: the child processes stop at once, not when the
    # traceback that holds this frame is let go.
    with contextlib.closing(examined(candidates, index)) as verdicts:
        for done, (path, verdict) in enumerate(zip(candidates, verdicts, strict=True), start=1):
            if isinstance(verdict, DicomMetadata):
                scan.images.append(verdict)
                if found is not None:
                    found(verdict)
            elif isinstance(verdict, DicomError):
                scan.unreadable.append(verdict)
            elif verdict is CandidateKind.SEGMENTATION:
                scan.segmentations.append(path)
            if progress is not None:
                progress(done, len(candidates))
    return scan


def examine_candidate(path: Path, index: HeaderIndex | None = None) -> Verdict:
    """THE rule for a file found in a folder: its image header, why it cannot be read, or what else it is.

    The one place `scan_folder` and the archive run (`pneumoviewer predict --workers`) decide which
    files of a folder are images."""
    header = index.lookup(path) if index is not None else None
    if header is not None:
        return header
    if looks_like_dicom(path):
        try:
            return dicom.read_header(path) if index is None else index.read(path)
        except SegmentationFile:
            return CandidateKind.SEGMENTATION
        except DicomError as error:
            return error
    if path.suffix.lower() == ".dcm":
        return DicomError(path, not_dicom_reason(path))
    return CandidateKind.IGNORED


def examined(candidates: list[Path], index: HeaderIndex | None = None) -> Generator[Verdict, None, None]:
    """`examine_candidate` of each candidate, in order; those the index does not know are parsed in
    child processes when there are at least `PARSE_IN_CHILDREN_FROM` candidates (module docstring)."""
    # A daemonic process (a worker of a process pool) may not start children of its own.
    if len(candidates) < PARSE_IN_CHILDREN_FROM or multiprocessing.current_process().daemon:
        yield from (examine_candidate(path, index) for path in candidates)
        return
    chunks = _chunks(candidates)
    first = next(chunks)
    readers = ProcessPoolExecutor(_reader_count(), mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_give_way)
    try:
        in_flight: deque[tuple[list[Path], list[DicomMetadata | None], Future | None]] = deque()

        def submit_next() -> None:
            paths = next(chunks, None)
            if paths is not None:
                known = [None if index is None else index.lookup(path) for path in paths]
                unknown = [path for path, header in zip(paths, known, strict=True) if header is None]
                parsed = None
                if unknown:
                    with contextlib.suppress(BrokenProcessPool):  # a reader died: this thread reads them
                        parsed = readers.submit(_examine_unknown, unknown)
                in_flight.append((paths, known, parsed))

        for _ in range(2 * _reader_count()):  # keep every reader busy while this thread takes results
            submit_next()
        yield from (examine_candidate(path, index) for path in first)
        while in_flight:
            paths, known, parsed = in_flight.popleft()
            submit_next()
            yield from _merged(paths, known, parsed, index)
    finally:
        readers.shutdown(wait=False, cancel_futures=True)


def _merged(paths: list[Path], known: list[DicomMetadata | None], parsed: Future | None,
            index: HeaderIndex | None) -> Iterator[Verdict]:
    """A chunk's verdicts in order: the index's headers, and the children's with their files' stamps
    recorded in the index. Those not sent to a child, or sent to one that died (killed, out of memory),
    are read in this thread."""
    try:
        results = iter(parsed.result()) if parsed is not None else None
    except BrokenProcessPool:
        results = None
    if results is None:
        yield from (header or examine_candidate(path, index) for path, header in zip(paths, known, strict=True))
        return
    for header in known:
        if header is not None:
            yield header
            continue
        verdict, stamp = next(results)
        if index is not None and stamp is not None and isinstance(verdict, DicomMetadata):
            index.remember(verdict, stamp)
        yield verdict


def _examine_unknown(paths: list[Path]) -> list[tuple[Verdict, FileStamp | None]]:
    """In a child process: each file's verdict with its stamp taken before reading (as `HeaderIndex.read`)."""
    results: list[tuple[Verdict, FileStamp | None]] = []
    for path in paths:
        stamp = stamp_of(path)  # before reading: a file written meanwhile shows as changed next time
        results.append((examine_candidate(path), stamp))
    return results


def _give_way() -> None:
    """In a child process, as it starts: a lower CPU priority (`READER_NICENESS`) where the system has one."""
    with contextlib.suppress(AttributeError, OSError):  # no os.nice (Windows), or not permitted
        os.nice(READER_NICENESS)


def _chunks(paths: list[Path]) -> Iterator[list[Path]]:
    iterator = iter(paths)
    while chunk := list(itertools.islice(iterator, CHUNK)):
        yield chunk


def _reader_count() -> int:
    """All cores but one (the app's threads keep it), at least one and at most `MAX_READERS`."""
    return max(1, min(MAX_READERS, (os.cpu_count() or 2) - 1))


def visible_files(folder: Path, unlistable: Callable[[DicomError], None]) -> Iterator[Path]:
    """The files of `folder` to look at, recursively, in `scan_folder`'s order (sorted by path), one
    at a time: an archive of a million files is walked without holding its list. Hidden files and
    folders and DICOMDIR are left out; a subfolder that cannot be listed is passed to `unlistable`."""

    def report(error: OSError) -> None:
        unlistable(DicomError(error.filename, f"this folder cannot be read ({error.strerror})"))

    for root, directories, names in os.walk(folder, onerror=report):
        directories[:] = sorted(name for name in directories if not name.startswith("."))
        for name in sorted(names):
            if not name.startswith(".") and name != "DICOMDIR":
                yield Path(root) / name
