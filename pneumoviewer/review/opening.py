"""Opening what the user picked (a folder, or a selection of files and folders) as a review session.

The app (on a worker thread) and `pneumoviewer export` call `open_studies` with the same paths, so
both read the same headers and find the same autosave (see `session.session_store_for`). The headers
read are kept beside that autosave (`SessionStore.headers_path`), so reopening reads only the files
changed or added since (see `io.header_index`). DICOM SEGs among them are not images: those of an
opened image become its editable mask unless the reader's autosaved work says otherwise (see
`seg_import`); the others are listed with why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pneumoviewer.errors import ProgressCallback
from pneumoviewer.io.dicom import DicomError, DicomMetadata, SegmentationFile
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.io.header_index import HeaderIndex
from pneumoviewer.pacing import garbage_collection_paused
from pneumoviewer.review.autosave import SessionStore
from pneumoviewer.review.seg_import import SegImport, import_segmentations
from pneumoviewer.review.session import ReviewSession, session_store_for

FoundCallback = Callable[[DicomMetadata], None]  # each header as soon as it is read


@dataclass(frozen=True)
class OpenedStudies:
    session: ReviewSession
    unreadable: list[DicomError]  # files not reviewed (unreadable, SEGs not applied): listed, never a stop
    title: str  # what was opened, in words (the window title)
    segmentations: SegImport = field(default_factory=SegImport)  # the SEGs applied as editable masks


def open_studies(
    paths: Sequence[Path],
    data_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    found: FoundCallback | None = None,
) -> OpenedStudies:
    """Read the headers (no pixels) of a folder or of a selection and restore its autosaved session.

    Folders are read as `scan_folder` reads them, files one by one. `progress(done, total)` follows
    each folder's scan, then the files; an exception it raises (a cancel) stops the reading.
    `found(metadata)` is called with each header as it is read. Raises `DicomError` for a picked
    path that does not exist (before reading anything) and for a folder that cannot be listed; a
    picked file that is not a readable DICOM is listed in `unreadable`. DICOM SEGs are applied to
    the session (`seg_import.import_segmentations`); those not applied are listed in `unreadable`
    with the reason. Call it off the GUI thread.
    """
    paths = [Path(path).expanduser() for path in paths]
    for path in paths:
        if not path.exists():
            raise DicomError(path, "no such file or folder")
    store = session_store_for(paths, data_dir)
    index = HeaderIndex.load(store.headers_path)
    if len(paths) == 1 and paths[0].is_dir():
        scan = scan_folder(paths[0], progress=progress, found=found, index=index)
        session = _session(store, index, scan.images, data_dir)
        imported = _import(session, scan.segmentations, selection=False)
        return OpenedStudies(session, scan.unreadable + imported.not_used, str(paths[0]), imported)
    images: list[DicomMetadata] = []
    unreadable: list[DicomError] = []
    segmentations: list[Path] = []
    files = [path for path in paths if not path.is_dir()]
    for folder in (path for path in paths if path.is_dir()):
        scan = scan_folder(folder, progress=progress, found=found, index=index)
        images += scan.images
        unreadable += scan.unreadable
        segmentations += scan.segmentations
    for done, path in enumerate(files, start=1):
        try:
            images.append(index.lookup(path) or index.read(path))
        except SegmentationFile:
            segmentations.append(path)
        except DicomError as error:
            unreadable.append(error)
        else:
            if found is not None:
                found(images[-1])
        if progress is not None:
            progress(done, len(files))
    session = _session(store, index, images, data_dir)
    imported = _import(session, segmentations, selection=True)
    unreadable += imported.not_used
    if len(paths) == 1:
        return OpenedStudies(session, unreadable, str(paths[0].resolve()), imported)
    kind = "files" if len(files) == len(paths) else "folders" if not files else "files and folders"
    return OpenedStudies(session, unreadable, f"{len(paths)} {kind} in {store.folder.parent}", imported)


def _session(store: SessionStore, index: HeaderIndex, images: list[DicomMetadata],
             data_dir: Path | None) -> ReviewSession:
    """The headers read saved in the index, then the session of their images: for a large folder ten
    thousand entries and cases at once, with no full garbage collection meanwhile (`pacing`)."""
    with garbage_collection_paused():
        _keep(index, store.headers_path)
        return ReviewSession.from_metadata(store.folder, images, data_dir)


def _import(session: ReviewSession, segmentations: list[Path], selection: bool) -> SegImport:
    return import_segmentations(session, segmentations, selection) if segmentations else SegImport()


def _keep(index: HeaderIndex, path: Path) -> None:
    """Save the index if the files changed; one that cannot be written (a read-only data folder) only
    means reading the headers again next time, so that is no reason to stop the opening."""
    if index.changed:
        with contextlib.suppress(OSError):
            index.save(path)
