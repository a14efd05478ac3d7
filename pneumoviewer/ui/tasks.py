"""What the controller's workers run: thin calls into the core that must stay off the GUI thread.

The core (pydicom, scikit-image, SciPy, Pillow: most of a second to import) is imported inside these
functions, so the window paints before any of it is loaded; once it has painted, `import_review_stack`
imports it on a worker, so that opening a folder later imports nothing beside the window.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.errors import ProgressCallback
from pneumoviewer.pacing import garbage_collection_paused, paced

if TYPE_CHECKING:
    from pneumoviewer.io.dicom import DicomImage
    from pneumoviewer.review.case import LesionStats
    from pneumoviewer.review.opening import FoundCallback, OpenedStudies
    from pneumoviewer.review.session import ReviewSession
    from pneumoviewer.review.training_set import ReviewedCases
    from pneumoviewer.ui.model_runner import ModelJob

# What opening a folder and showing its first case import: pydicom's dictionary alone is one module body that holds
# the GIL for ~65 ms, so the window froze when these were imported while it listed the first rows.
REVIEW_STACK = ("pneumoviewer.review.opening", "pneumoviewer.io.images", "pneumoviewer.review.lesions",
                "pneumoviewer.model.identity", "pneumoviewer.model.prediction")


def import_review_stack() -> None:
    """Import `REVIEW_STACK` (on a worker, once the window has painted), with no garbage collection
    meanwhile (a full one walked the whole app for ~60 ms) and the modules frozen out of later ones."""
    from pneumoviewer.ui.model_runner import pyside_source_check_skipped

    with garbage_collection_paused(), pyside_source_check_skipped():  # ~800 modules that never import Qt
        for name in REVIEW_STACK:
            importlib.import_module(name)
        from PIL import Image

        Image.preinit()  # Pillow's common formats: pydicom decodes JPEG DICOMs (SIIM's) with it


@dataclass(frozen=True)
class RestoredPredictions:
    """AI results reused from the session store instead of running the network again."""

    model_key: str  # the fingerprint of the model they were stored under
    lesions: dict[str, LesionStats]  # image id -> the AI mask's lesions, measured here, off the GUI thread


@dataclass(frozen=True)
class OpenedForReview:
    studies: OpenedStudies  # the session, the unreadable files, the title
    restored: RestoredPredictions | None = None
    # A prediction job for every case, in worklist order: built here, not on the GUI thread (10,000 of them
    # took ~0.1 s there); the controller leaves out those with a restored result.
    jobs: list[ModelJob] = field(default_factory=list)


def restore_predictions(session: ReviewSession, model_checkpoint: Path | None) -> RestoredPredictions | None:
    """Apply the results stored for this session under `model_checkpoint`'s fingerprint (None: nothing
    to look for, or that model's files cannot be read; then every case is predicted)."""
    from pneumoviewer.model.identity import model_fingerprint

    if model_checkpoint is None:
        return None
    try:
        model_key = model_fingerprint(model_checkpoint)
    except OSError:
        return None
    restored = session.restore_predictions(model_key)
    lesions = {image_id: lesions for image_id in restored
               if (lesions := session.case(image_id).ai_lesions()) is not None}
    return RestoredPredictions(model_key, lesions)


@dataclass(frozen=True)
class LoadedImage:
    image_id: str
    image: DicomImage


def open_for_review(paths: list[Path], data_dir: Path | None, model_checkpoint: Path | None,
                    progress: ProgressCallback, found: FoundCallback | None = None) -> OpenedForReview:
    """A folder's or a selection's headers (no pixels) in its autosaved session (`review.opening`),
    with the AI results stored for it under `model_checkpoint` already applied."""
    from pneumoviewer.ui.ai_bridge import model_job
    from pneumoviewer.ui.model_runner import JobKind

    import_review_stack()  # already done unless the folder was opened before the window first painted
    from pneumoviewer.review.opening import open_studies

    studies = open_studies(paths, data_dir, progress=progress, found=found)
    restored = restore_predictions(studies.session, model_checkpoint)
    with garbage_collection_paused():  # the jobs live until the AI has run them
        jobs = [model_job(JobKind.PREDICT, case) for case in paced(studies.session.worklist())]
    return OpenedForReview(studies, restored, jobs)


def load_image(image_id: str, path: Path) -> LoadedImage:
    from pneumoviewer.io.images import load_radiograph

    return LoadedImage(image_id, load_radiograph(path))


def snapshot_reviewed_cases(cases: list, path: Path) -> ReviewedCases:
    """The session's reviewed cases, checked (`review.training_set`), written to `path` for the fine-tuning
    process; returned for the dialog to say what was found and what was refused."""
    from pneumoviewer.review.training_set import reviewed_cases, write_snapshot

    gathered = reviewed_cases(cases)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_snapshot(gathered, path)
    return gathered
