"""A review session: the cases of one opened folder or selection, the worklist order, AI results, autosave.

Everything the user does is saved as it happens (see `autosave`): each committed mask edit rewrites
that case's mask file, each status change the small index. Reopening the same folder (after a
crash, a SIGKILL or a normal quit) restores statuses and edited masks; undo history is not kept
across restarts. AI results given with a model key are stored apart from that work (see
`prediction_store`); `restore_predictions` puts back those still valid, so only new or changed
files, or a new model, need the network.

If a save fails (disk full, folder read-only) the edit stays in memory, the case is remembered as
unsaved and retried on the next save, and `save_failed` is called with the `SessionSaveError`:
the UI shows it. `save()` saves everything still pending and raises if it cannot.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pneumoviewer.errors import ProgressCallback
from pneumoviewer.io.annotations import AnnotationError, read_annotation_rows
from pneumoviewer.io.rle import RleConvention, RleError, decode_rows
from pneumoviewer.pacing import paced
from pneumoviewer.review.autosave import (
    SessionLoadError,
    SessionSaveError,
    SessionStore,
)
from pneumoviewer.review.case import Case, CaseChange, ReviewStatus
from pneumoviewer.review.events import Callbacks
from pneumoviewer.review.prediction_store import FileIdentity, StoredPrediction

if TYPE_CHECKING:
    from pneumoviewer.io.dicom import DicomMetadata


class AiResult(Protocol):
    """What `apply_prediction` needs of a `pneumoviewer.model.inference.Prediction` (`positive` is the call)."""

    score: float
    mask: np.ndarray
    positive: bool


class WorklistOrder(str, Enum):
    AI_SCORE = "ai_score"  # highest score first, cases without a score last, then folder order
    FOLDER = "folder"


@dataclass(frozen=True)
class ImportSummary:
    path: Path
    positive: int  # cases of this session that received a lesion mask
    negative: int  # cases of this session marked "-1"
    unknown_ids: tuple[str, ...]  # ids in the CSV that are not in this session


def session_store_for(paths: Sequence[Path], data_dir: Path | None = None) -> SessionStore:
    """Where the autosave of what the user opened lives: the one rule, for the app and `pneumoviewer export`.

    One folder has its own session. Anything else (files, several folders, both) is a selection
    with a session of its own, keyed by the sorted resolved paths picked (in any order, relative or
    not), so it never overwrites the statuses of a folder's session holding some of the same files.
    Its `folder` is then `<the picked paths' common folder>/.selection-<digest>`, not a real folder.
    """
    paths = [Path(path).expanduser() for path in paths]
    if not paths:
        raise ValueError("nothing was opened: a session needs a folder or files")
    if len(paths) == 1 and paths[0].is_dir():
        return SessionStore(paths[0], data_dir)
    resolved = sorted(str(path.resolve()) for path in paths)
    common = Path(os.path.commonpath(resolved))
    if common.is_file():
        common = common.parent
    digest = hashlib.sha256("\n".join(resolved).encode("utf-8")).hexdigest()[:12]
    return SessionStore(common / f".selection-{digest}", data_dir)


class ReviewSession:
    def __init__(self, folder: Path, cases: Sequence[Case], data_dir: Path | None = None) -> None:
        """Hold `cases` (in folder order) and restore what was autosaved for `folder`.

        `data_dir` overrides the per-user data directory (tests, portable installs).
        """
        self.folder = Path(folder)
        self.cases: list[Case] = []
        # Copies of an image already in the session (same SOPInstanceUID): listed, not reviewed twice.
        self.duplicates: list[Case] = []
        self._by_id: dict[str, Case] = {}
        for case in paced(cases):
            if case.image_id in self._by_id:
                self.duplicates.append(case)
            else:
                self._by_id[case.image_id] = case
                self.cases.append(case)
        self.store = SessionStore(self.folder, data_dir)
        self.case_changed: Callbacks[[Case, CaseChange]] = Callbacks()
        self.save_failed: Callbacks[[SessionSaveError]] = Callbacks()
        self.restore_problems: list[SessionLoadError] = []
        self._unsaved_masks: set[str] = set()
        self._statuses_unsaved = False
        # Statuses saved for images not found this time (a subfolder not mounted): kept, not dropped.
        self._absent_statuses: dict[str, ReviewStatus] = {}
        # Edits come from the UI thread, imports and predictions from workers: one writer at a time.
        self._save_lock = threading.RLock()
        # The AI thread stores results while a worker may restore them: one at a time, and apart
        # from `_save_lock`, so storing a result never holds up the saving of an edit.
        self._prediction_lock = threading.Lock()
        self._ai_model_keys: dict[str, str | None] = {}  # image id -> the model of its result this session
        self._prediction_save_failing = False
        self._restore()
        for case in paced(self.cases):
            case.changed.connect(self._on_case_changed)

    @classmethod
    def from_metadata(
        cls, folder: Path, images: Iterable[DicomMetadata], data_dir: Path | None = None
    ) -> ReviewSession:
        """From `pneumoviewer.io.folder_scan.scan_folder(folder).images`; display ids "Case 0001"... in path order."""
        ordered = sorted(images, key=lambda metadata: str(metadata.path))
        width = max(4, len(str(len(ordered))))
        cases = [Case.from_metadata(meta, f"Case {number:0{width}d}") for number, meta in enumerate(paced(ordered), 1)]
        return cls(folder, cases, data_dir)

    # -- access --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def case(self, image_id: str) -> Case:
        try:
            return self._by_id[image_id]
        except KeyError:
            raise KeyError(f"no image {image_id} in {self.folder}") from None

    def worklist(
        self,
        statuses: Iterable[ReviewStatus] | None = None,
        order: WorklistOrder = WorklistOrder.AI_SCORE,
    ) -> list[Case]:
        """The cases to show, filtered by status (None = all), likely pneumothorax first."""
        wanted = None if statuses is None else {ReviewStatus(status) for status in statuses}
        chosen = [case for case in self.cases if wanted is None or case.status in wanted]
        if WorklistOrder(order) is WorklistOrder.AI_SCORE:
            # sorted() is stable: equal scores keep folder order.
            chosen.sort(key=lambda case: (case.ai_score is None, -(case.ai_score or 0.0)))
        return chosen

    @property
    def done_count(self) -> int:
        return sum(count for status, count in self.status_counts().items() if status.is_done)

    def status_counts(self) -> dict[ReviewStatus, int]:
        counts = dict.fromkeys(ReviewStatus, 0)
        for case in self.cases:
            counts[case.status] += 1
        return counts

    # -- changes -------------------------------------------------------------------------------

    def set_status(self, image_id: str, status: ReviewStatus) -> None:
        self.case(image_id).set_status(status)

    def apply_prediction(self, image_id: str, prediction: AiResult, model_key: str | None = None) -> None:
        """Show an AI result as it arrives (again after a re-run); edits are never touched.

        With `model_key` (`model.identity.model_fingerprint` of the model that made it) the result
        is also stored, so `restore_predictions` finds it after a restart while the file is the same.
        """
        case = self.case(image_id)
        with self._prediction_lock:  # so a restore running meanwhile cannot put an older result over it
            case.set_ai_result(prediction.score, prediction.mask, prediction.positive)
            self._ai_model_keys[image_id] = model_key
            if model_key is None or case.path is None:
                return
            try:
                # The file as it is now: it was read for this prediction a moment ago.
                identity = FileIdentity.of(case.path)
            except OSError:
                return  # gone or unreadable: nothing to key the result by; it is predicted next time
            entry = StoredPrediction.of(image_id, identity, model_key, prediction.score, bool(case.ai_positive),
                                        prediction.mask)
            try:
                self.store.append_prediction(entry)
            except SessionSaveError as error:
                if not self._prediction_save_failing:  # once per failing spell, not once per image
                    self.save_failed.emit(error)
                self._prediction_save_failing = True
            else:
                self._prediction_save_failing = False

    def restore_predictions(self, model_key: str) -> set[str]:
        """Show the stored AI results of `model_key` whose file is unchanged; returns their image ids.

        Every other case needs the network: no stored result, another model's, a changed file, or a
        damaged entry (dropped, and named in `restore_problems`). A case that already holds a result
        of this model from this session keeps it. Reads every stored file's sample (see
        `FileIdentity`): call it off the GUI thread. Never raises for a bad store.
        """
        with self._prediction_lock:
            journal = self.store.predictions
            try:
                contents = journal.read()
            except OSError as error:
                self.restore_problems.append(
                    SessionLoadError(journal.path, f"the stored AI results are unreadable ({error})"))
                return set()
            kept = dict(contents.latest)
            damaged = list(contents.damaged)
            restored: set[str] = set()
            for key, entry in contents.latest.items():
                image_id = entry.image_id
                case = self._by_id.get(image_id)
                if case is None or entry.model_key != model_key or self._ai_model_keys.get(image_id) == model_key:
                    continue  # kept for an image not found this time, or for when that model is back
                if case.path is None or entry.shape != case.shape or not entry.file.matches(case.path):
                    del kept[key]  # a changed file: the result can never apply again
                    continue
                try:
                    mask = entry.mask()
                except RleError as error:
                    damaged.append(f"{image_id}: its mask is not valid RLE ({error.reason})")
                    del kept[key]
                    continue
                case.set_ai_result(entry.score, mask, entry.positive)
                self._ai_model_keys[image_id] = model_key
                restored.add(image_id)
            if damaged:
                count = "1 stored AI result is" if len(damaged) == 1 else f"{len(damaged)} stored AI results are"
                more = f" and {len(damaged) - 1} more" if len(damaged) > 1 else ""
                self.restore_problems.append(SessionLoadError(
                    journal.path, f"{count} damaged and will be predicted again ({damaged[0]}{more})"))
            if contents.dead_lines or len(kept) < len(contents.latest):
                with contextlib.suppress(OSError):  # the dead lines stay, skipped again next time: nothing lost
                    journal.rewrite(list(kept.values()))
            return restored

    def import_annotations(
        self,
        path: Path,
        convention: RleConvention = RleConvention.RELATIVE,
        progress: ProgressCallback | None = None,
    ) -> ImportSummary:
        """Load a challenge-format CSV as the editable masks (rows of one image are united).

        Cases not in the CSV keep their mask; statuses are unchanged (the import is what to review).
        Raises `AnnotationError` naming the file (and the line or image) for bad input, before
        changing any case. `progress(done, total)` follows the cases being loaded (and autosaved).
        """
        path = Path(path)
        rows_by_image: dict[str, list[str]] = {}
        unknown: dict[str, None] = {}
        for image_id, encoded in read_annotation_rows(path):
            if image_id in self._by_id:
                rows_by_image.setdefault(image_id, []).append(encoded)
            else:
                unknown[image_id] = None
        masks: dict[str, np.ndarray] = {}
        for image_id, encoded_rows in rows_by_image.items():
            try:
                masks[image_id] = decode_rows(encoded_rows, self._by_id[image_id].shape, convention)
            except RleError as error:
                raise AnnotationError(path, 0, f"image {image_id}: {error.reason}") from error
        for done, (image_id, mask) in enumerate(masks.items(), 1):
            self._by_id[image_id].load_mask(mask if mask.any() else None)
            if progress is not None:
                progress(done, len(masks))
        positive = sum(bool(mask.any()) for mask in masks.values())
        return ImportSummary(path, positive, len(masks) - positive, tuple(unknown))

    # -- autosave ------------------------------------------------------------------------------

    @property
    def has_unsaved_changes(self) -> bool:
        return self._statuses_unsaved or bool(self._unsaved_masks)

    def save(self) -> None:
        """Write whatever is pending; raises the first SessionSaveError if something still cannot be."""
        with self._save_lock:
            failure: SessionSaveError | None = None
            if self._statuses_unsaved:
                try:
                    self.store.save_statuses(self._statuses())
                    self._statuses_unsaved = False
                except SessionSaveError as error:
                    failure = error
            for image_id in sorted(self._unsaved_masks):
                try:
                    self.store.save_mask(image_id, self._by_id[image_id].mask)
                    self._unsaved_masks.discard(image_id)
                except SessionSaveError as error:
                    failure = failure or error
            if failure is not None:
                raise failure

    def close(self) -> None:
        """Stop listening to the cases (after a last save attempt); the session file stays."""
        try:
            self.save()
        finally:
            for case in self.cases:
                case.changed.disconnect(self._on_case_changed)

    def _on_case_changed(self, case: Case, change: CaseChange) -> None:
        with self._save_lock:
            if change is CaseChange.STATUS:
                self._statuses_unsaved = True
            elif change is CaseChange.MASK:
                self._unsaved_masks.add(case.image_id)
            try:
                self.save()
            except SessionSaveError as error:
                self.save_failed.emit(error)
        self.case_changed.emit(case, change)

    def _statuses(self) -> dict[str, ReviewStatus]:
        statuses = dict(self._absent_statuses)
        statuses.update((case.image_id, case.status) for case in self.cases if case.status.is_done)
        return statuses

    def _restore(self) -> None:
        try:
            statuses = self.store.load_statuses()
        except SessionLoadError as error:
            self.restore_problems.append(error)
            statuses = {}
        self._absent_statuses = {key: value for key, value in statuses.items() if key not in self._by_id}
        # One listing of the masks saved instead of a look-up per case: 10,000 of those were ~0.5 s of
        # Python on the indexing thread, which slowed the window's painting (it needs the same GIL).
        saved_masks = self.store.saved_mask_names()
        for case in paced(self.cases):
            mask = None
            if saved_masks and self.store.mask_path(case.image_id).name in saved_masks:
                try:
                    mask = self.store.load_mask(case.image_id, case.shape)
                except SessionLoadError as error:
                    self.restore_problems.append(error)
            status = statuses.get(case.image_id, ReviewStatus.UNREVIEWED)
            if mask is not None or status is not ReviewStatus.UNREVIEWED:
                case.restore(status, mask)
