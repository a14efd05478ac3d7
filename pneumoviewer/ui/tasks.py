"""What the controller's workers run: thin calls into the core that must stay off the GUI thread.

The core (pydicom, scikit-image, SciPy: most of a second to import) is imported inside these
functions, on the worker that first needs it, so the window paints before any of it is loaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pneumoviewer.io.dicom import DicomError, DicomImage, DicomMetadata
    from pneumoviewer.review.case import LesionStats
    from pneumoviewer.review.session import ReviewSession

ProgressCallback = Callable[[int, int], None]
FoundCallback = Callable[["DicomMetadata"], None]  # each header as it is read (called on the worker thread)


@dataclass(frozen=True)
class RestoredPredictions:
    """AI results reused from the session store instead of running the network again."""

    model_key: str  # the fingerprint of the model they were stored under
    lesions: dict[str, LesionStats]  # image id -> the AI mask's lesions, measured here, off the GUI thread


@dataclass(frozen=True)
class OpenedStudies:
    session: ReviewSession
    unreadable: list[DicomError]
    title: str
    restored: RestoredPredictions | None = None


def restore_predictions(session: ReviewSession, model_checkpoint: Path | None) -> RestoredPredictions | None:
    """Apply the results stored for this session under `model_checkpoint`'s fingerprint (None: nothing
    to look for, or that model's files cannot be read; then every case is predicted)."""
    from pneumoviewer.model.identity import model_fingerprint
    from pneumoviewer.review.case import lesion_stats

    if model_checkpoint is None:
        return None
    try:
        model_key = model_fingerprint(model_checkpoint)
    except OSError:
        return None
    restored = session.restore_predictions(model_key)
    lesions = {image_id: lesion_stats(session.case(image_id).ai_mask, session.case(image_id).pixel_spacing_mm)
               for image_id in restored}
    return RestoredPredictions(model_key, lesions)


@dataclass(frozen=True)
class LoadedImage:
    image_id: str
    image: DicomImage


def index_folder(folder: Path, data_dir: Path | None, model_checkpoint: Path | None, progress: ProgressCallback,
                 found: FoundCallback | None = None) -> OpenedStudies:
    """Read every header under `folder` (no pixels), restore its autosaved session and the AI results
    stored for it under `model_checkpoint`."""
    from pneumoviewer.io.dicom import scan_folder
    from pneumoviewer.review.session import ReviewSession

    scan = scan_folder(folder, progress=progress, found=found)
    session = ReviewSession.from_metadata(folder, scan.images, data_dir)
    return OpenedStudies(session, scan.unreadable, str(folder), restore_predictions(session, model_checkpoint))


def index_files(paths: list[Path], data_dir: Path | None, model_checkpoint: Path | None,
                progress: ProgressCallback, found: FoundCallback | None = None) -> OpenedStudies:
    """Headers of a hand-picked selection: files, and folders read as `scan_folder` reads them.

    A selection gets its own autosave (keyed by what was picked) so it never overwrites the
    statuses of a session on a whole folder that holds some of the same files. Folders are
    expanded here, on the worker thread: listing a large tree must not hold up the window.
    """
    from pneumoviewer.io.dicom import DicomError, read_header, scan_folder
    from pneumoviewer.review.session import ReviewSession

    images, unreadable = [], []
    files = [Path(path) for path in paths if not Path(path).is_dir()]
    for folder in (Path(path) for path in paths if Path(path).is_dir()):
        scan = scan_folder(folder, progress=progress, found=found)
        images += scan.images
        unreadable += scan.unreadable
    for done, path in enumerate(files, start=1):
        try:
            images.append(read_header(path))
        except DicomError as error:
            unreadable.append(error)
        else:
            if found is not None:
                found(images[-1])
        progress(done, len(files))
    resolved = sorted(str(Path(path).resolve()) for path in paths)
    common = Path(os.path.commonpath(resolved)) if resolved else Path.cwd()
    if common.is_file():
        common = common.parent
    digest = hashlib.sha256("\n".join(resolved).encode("utf-8")).hexdigest()[:12]
    session = ReviewSession.from_metadata(common / f".selection-{digest}", images, data_dir)
    restored = restore_predictions(session, model_checkpoint)
    if len(paths) == 1:
        return OpenedStudies(session, unreadable, str(Path(paths[0]).resolve()), restored)
    kind = "files" if len(files) == len(paths) else "folders" if not files else "files and folders"
    return OpenedStudies(session, unreadable, f"{len(paths)} {kind} in {common}", restored)


def load_image(image_id: str, path: Path) -> LoadedImage:
    from pneumoviewer.io.images import load_radiograph

    return LoadedImage(image_id, load_radiograph(path))
