"""The review controller: the app's state and what the user asks of it, with no widgets.

It owns the open session, the case on screen (`current_id`, the one record of it), the caches of
decoded images and heatmaps, the AI queue and the follow-the-top policy. Helpers it owns do the
rest, with no state of the controller's copied: `transfers` (transfers.py: the one background task,
annotation files in and out), `ai` (ai_bridge.py: the model in use, what the AI queue reports),
`case_images` (case_images.py: decoding and prefetch) and `rows` (findings.py: worklist rows after
a change). It is the one place where the core's plain callbacks (the session's, the workers', the
AI queue's) become Qt signals: every `sig…` signal below is emitted on the GUI thread, whatever
thread made the change, so views connect to them and draw. Views call the slots for what the user
asked (open, show or step a case, set a status, predict, use a model, import or export, cancel).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot

from pneumoviewer.model.versions import ModelRegistry
from pneumoviewer.paths import default_model_path
from pneumoviewer.ui import long_lived, tasks
from pneumoviewer.ui.ai_bridge import AiBridge, model_job
from pneumoviewer.ui.case_images import CaseImages
from pneumoviewer.ui.findings import Findings, RowRefresher, case_fields, counter_text
from pneumoviewer.ui.lru_cache import LruCache
from pneumoviewer.ui.model_queue import ModelQueue
from pneumoviewer.ui.model_runner import CheckpointModel, JobKind, ModelJob, default_predictor
from pneumoviewer.ui.preferences import recent_folders, remember_folder
from pneumoviewer.ui.transfers import TransferRunner
from pneumoviewer.ui.workers import Worker, WorkerPool
from pneumoviewer.ui.worklist import WorklistModel, WorklistRow

if TYPE_CHECKING:  # the review stack is imported by the workers, after the window is up (see tasks.py)
    from pneumoviewer.io.rle import RleConvention
    from pneumoviewer.review.case import Case, CaseChange, LesionStats, ReviewStatus
    from pneumoviewer.review.export import ExportScope
    from pneumoviewer.review.session import ReviewSession

IMAGE_CACHE_SIZE = 6  # decoded images kept: the last few cases viewed and the next one
HEATMAP_CACHE_SIZE = 12
# The folder's AI jobs are queued this many per turn of the event loop: 10,000 at once took 12-20 ms of the GUI
# thread, which with the first image decoded on a worker (pydicom's Python) made a 57-62 ms stall.
JOBS_PER_TURN = 1_000
# When the folder is indexed its session's rows are checked against the listed ones this many per turn: 10,000
# in one go took 13-29 ms of the GUI thread run by itself, more beside the workers (as indexing ended).
ROWS_PER_TURN = 2_000


class ReviewController(QObject):
    sigSessionOpened = Signal()  # the session's rows are listed, its first case chosen and its AI jobs queued
    sigTitleChanged = Signal(str)  # what is open ("" when nothing is)
    sigUnreadable = Signal(list)  # one reason per file that is not reviewed (unreadable, a duplicate)
    sigRecentFolders = Signal(list)  # the recently opened folders, newest first
    sigNote = Signal(str)  # a line where the film goes while there is no case (reading headers)
    sigCurrentCase = Signal(object)  # the Case on screen, or None; its pixels follow in sigPixels
    sigCaseFields = Signal(dict)  # header facts of the case on screen
    sigFindingFields = Signal(dict)  # the AI's and the reader's lesions of the case on screen
    sigPixels = Signal(str, object)  # image_id, DicomImage (decoded off the GUI thread)
    sigCaseShown = Signal(str)  # image_id, once its pixels have been handed to the views
    sigImageFailed = Signal(str, str)  # image_id, why it cannot be shown
    sigHeatmap = Signal(str, object)  # image_id, Grad-CAM array in [0, 1] or None
    sigCaseChanged = Signal(object, object)  # Case, CaseChange (edits, statuses, AI results)
    sigCounter = Signal(str)  # the review counter ("Done 3 / 50 · …")
    sigMessage = Signal(str, int)  # a passing message, how long in ms (0: until the next); "" clears
    sigWarning = Signal(str, str)  # title, text: something the reader must see
    sigSaveFailed = Signal(str)  # the autosave could not write (disk full, read-only folder)
    sigAiState = Signal(str, str)  # the lasting AI note; why it is not what was asked ("" when fine)
    sigProgress = Signal(int, int, str)  # done, total, what: background work under way
    sigIdle = Signal()  # no background work any more
    sigReadOnly = Signal(bool)  # True while an import writes masks: edits wait
    sigTaskFinished = Signal(object)  # the result of an export / import
    sigTriagePoint = Signal(object, object)  # the model's OperatingPoints (None: none loaded), the point flagged at

    # Core callbacks arrive on any thread; emitting these queues them onto the GUI thread.
    _sigCoreCaseChanged = Signal(object, object)
    _sigCoreSaveFailed = Signal(str)

    def __init__(self, predictor_factory: Callable[[], Any] = default_predictor, data_dir: Path | None = None,
                 model_checkpoint: Path | None = None, parent: QObject | None = None) -> None:
        """`predictor_factory` loads the model on the AI thread; `model_checkpoint` is the checkpoint it
        loads (the bundled one for the default factory), whose stored results a reopened folder reuses.
        `data_dir` is where sessions autosave (None: the per-user data folder)."""
        super().__init__(parent)
        self.data_dir = data_dir
        if model_checkpoint is None and predictor_factory is default_predictor:
            model_checkpoint = default_model_path()
            promoted = ModelRegistry(data_dir).active()  # a model promoted from the reviews stays in use
            if not promoted.bundled:
                model_checkpoint, predictor_factory = promoted.weights, CheckpointModel(promoted.weights)
        self.model_checkpoint = model_checkpoint
        self.pool = WorkerPool(max_threads=4, parent=self)
        self.model_queue = ModelQueue(self.pool, predictor_factory, self)
        self.worklist_model = WorklistModel(self)  # the worklist as shown: sorted and filtered
        self.findings = Findings()
        self.session: ReviewSession | None = None
        self.current_id: str | None = None
        self.case_images = CaseImages(self.pool, IMAGE_CACHE_SIZE, self)
        self.images = self.case_images.cache  # the decoded images: the last few cases viewed and the next one
        self.heatmaps: LruCache[str, np.ndarray] = LruCache(HEATMAP_CACHE_SIZE)
        self.heatmaps_wanted = False  # the heatmap overlay is on: compute it for the case on screen
        # Until the reader acts, the case on screen follows the top of the worklist as scores arrive
        # (likeliest pneumothorax first); any key, click or wheel on the film or the list stops that.
        self.follow_top = False
        # The reader's triage pick, as a sensitivity (it means the same on every model's curve); None: the card's.
        self.triage_sensitivity: float | None = None
        self.rows = RowRefresher(self.worklist_model, self.findings, self)
        self._awaiting_first_rows = False  # a folder is being opened and none of its rows is listed yet
        self._indexed: tasks.OpenedForReview | None = None  # an indexed folder whose rows are being checked
        self._files_found = 0  # files to read in the folder being indexed: how wide its case numbers are
        self._warm_up_deferred = False  # the model is to load once they are (see warm_up)
        self.case_images.sigLoaded.connect(self._image_loaded)
        self.case_images.sigFailed.connect(self._image_failed)
        self._sigCoreCaseChanged.connect(self._case_changed)
        self._sigCoreSaveFailed.connect(self._save_failed)
        self.worklist_model.sigRearranged.connect(self._follow_the_top)
        self.transfers = TransferRunner(self.pool, self)  # the one background task; annotation files in and out
        t = self.transfers
        t.sigProgress.connect(self.sigProgress)
        t.sigMessage.connect(self.sigMessage)
        t.sigWarning.connect(self.warn)
        t.sigReadOnly.connect(self.sigReadOnly)
        t.sigTaskFinished.connect(self.sigTaskFinished)
        t.sigTaskEnded.connect(self.refresh_busy)
        self.ai = AiBridge(self)  # the model in use and what the AI queue reports

    # -- opening studies --------------------------------------------------------------------------
    @Slot(list)
    def open_paths(self, paths: list[Path]) -> None:
        """A single folder opens as a folder session; anything else as a selection of files."""
        paths = [Path(path).expanduser() for path in paths]
        missing = [path for path in paths if not path.exists()]
        if missing:
            self.warn("Cannot open", "\n".join(f"{path}: no such file or folder" for path in missing))
            paths = [path for path in paths if path.exists()]
        if len(paths) == 1 and paths[0].is_dir():
            self.open_folder(paths[0])
        elif paths:
            self._start_indexing(paths, "Reading headers")

    def open_folder(self, folder: Path) -> None:
        remember_folder(folder)
        self.sigRecentFolders.emit(recent_folders())
        self._start_indexing([Path(folder)], "Indexing headers")

    def _start_indexing(self, paths: list[Path], progress_text: str) -> None:
        self._close_session()
        worker = Worker(tasks.open_for_review, paths, self.data_dir, self.model_checkpoint,
                        progress_text=progress_text, batch_keyword="found")
        self.sigNote.emit("Reading the study headers…")
        worker.sigYielded.connect(self._headers_found)
        worker.sigFinished.connect(self._session_opened)
        worker.sigErrored.connect(self._indexing_stopped)
        worker.sigAborted.connect(self._indexing_stopped)
        worker.sigProgress.connect(self._files_listed)
        self._awaiting_first_rows = True
        self._files_found = 0
        self.transfers.run(worker)

    @Slot(object)
    def _headers_found(self, headers: list) -> None:
        """List studies as their headers are read, so a folder of thousands shows at once and fills in.

        These rows are provisional (no AI, no restored status yet): the session replaces them when the
        whole folder is indexed, with the same case numbers unless files are out of path order.
        """
        if self.sender() is not self.transfers.task or self.session is not None:
            return  # a batch from an indexing that was cancelled meanwhile
        first = self.worklist_model.total_count + 1
        width = max(4, len(str(self._files_found)))  # the session's rule (`ReviewSession.from_metadata`)
        self.worklist_model.append_rows([self.findings.listed_row(meta, f"Case {number:0{width}d}")
                                         for number, meta in enumerate(headers, first)])
        long_lived.settle()  # these rows live until the session replaces them
        self._first_rows_listed()

    @Slot(int, int, str)
    def _files_listed(self, _done: int, total: int, _text: str) -> None:
        """The indexing's progress: how many files there are to read (the first report comes before any row)."""
        self._files_found = total

    @Slot()
    def _indexing_stopped(self, *_: object) -> None:
        self._first_rows_listed()
        if self.session is None:  # cancelled or failed: no half list without a session behind it
            self.worklist_model.set_rows([])
            self.current_id = None
            self.sigCurrentCase.emit(None)

    @Slot(object)
    def _session_opened(self, opened: tasks.OpenedForReview) -> None:
        """The folder is indexed: its session's rows replace the listed ones (where they differ), checked
        `ROWS_PER_TURN` at a time; the session is the controller's once they are. The first case and the AI's
        jobs (`JOBS_PER_TURN` at a time) follow in later turns, so that no single tick of the event loop holds
        the window for all of it (10,000 rows, then 10,000 jobs: tens of milliseconds each). Until then the
        window is as while indexing: the listed rows, nothing to edit."""
        self._first_rows_listed()
        self._indexed = opened
        error = None if self.model_queue.model_error is None else f"AI unavailable: {self.model_queue.model_error}"
        restored = self.ai.take_restored(opened.restored)
        counts_differ = len(opened.studies.session.cases) != self.worklist_model.total_count
        self._check_rows(opened, error, restored, [], counts_differ)

    def _check_rows(self, opened: tasks.OpenedForReview, error: str | None, restored: dict[str, LesionStats],
                    rows: list[WorklistRow], replaced: bool) -> None:
        if self._indexed is not opened:
            return  # another folder opened, or the window closed, meanwhile
        listed = self.worklist_model.row
        for case in opened.studies.session.cases[len(rows):len(rows) + ROWS_PER_TURN]:
            before = listed(case.image_id)
            rows.append(self.findings.session_row(case, error, before))
            replaced = replaced or rows[-1] is not before
        if len(rows) < len(opened.studies.session.cases):
            QTimer.singleShot(0, self, lambda: self._check_rows(opened, error, restored, rows, replaced))
            return
        self._indexed = None
        studies = opened.studies
        self.session = session = studies.session
        session.case_changed.connect(self._sigCoreCaseChanged.emit)
        session.save_failed.connect(self._forward_save_failure)
        self.sigTitleChanged.emit(studies.title)
        picked = self.current_id  # a provisional row the reader already picked
        if replaced:  # else every row is already there: no model reset, so no full relayout and repaint
            self.worklist_model.set_rows(rows)
        duplicates = [f"{case.path}: the same image as {session.case(case.image_id).path} (shown once)"
                      for case in session.duplicates]
        self.sigUnreadable.emit([str(error) for error in studies.unreadable] + duplicates)
        if session.restore_problems:
            self.warn("Autosave partly unreadable", "\n".join(map(str, session.restore_problems)))
        self._update_counter()
        reviewed = session.done_count
        self.sigMessage.emit(
            f"{len(session)} images" + (f", {reviewed} reviewed cases restored" if reviewed else "")
            + (f", {len(restored)} AI results reused" if restored else ""), 8000
        )
        # The network runs only on what has no stored result: new or changed files, or another model.
        jobs = [job for job in opened.jobs if job.image_id not in restored]
        QTimer.singleShot(0, self, lambda: self._show_first_case(session, picked, jobs))

    def _show_first_case(self, session: ReviewSession, picked: str | None, jobs: list[ModelJob]) -> None:
        """The second turn of an opening: the case on screen (the one the reader picked while the folder was
        listed, else the top one), whose jobs go first; the folder's jobs follow a turn later."""
        if self.session is not session:
            return  # closed meanwhile
        if self.current_id == picked:  # else the reader chose a case of the session since the first turn
            self.current_id = None
            shown = picked if picked is not None and self.worklist_model.row(picked) is not None else None
            shown = shown or self.worklist_model.image_id_at(0)
            if shown is not None:
                self._make_current(shown)
            self.follow_top = picked is None
        QTimer.singleShot(0, self, lambda: self._queue_session(session, jobs))

    def _queue_session(self, session: ReviewSession, jobs: list[ModelJob]) -> None:
        """The last turns of an opening: the folder's jobs, `JOBS_PER_TURN` at a time, then the session is open."""
        if self.session is not session:
            return
        self.model_queue.enqueue(jobs[:JOBS_PER_TURN])
        if len(jobs) > JOBS_PER_TURN:
            QTimer.singleShot(0, self, lambda: self._queue_session(session, jobs[JOBS_PER_TURN:]))
            return
        long_lived.settle()  # the session's cases, rows and jobs
        self.sigSessionOpened.emit()

    def _forward_save_failure(self, error: Exception) -> None:  # any thread
        self._sigCoreSaveFailed.emit(str(error))

    @Slot(str)
    def _save_failed(self, reason: str) -> None:
        self.sigSaveFailed.emit(reason)
        self.sigMessage.emit(f"Autosave failed: {reason}", 0)

    def _close_session(self) -> None:
        self.model_queue.cancel()
        self.transfers.cancel()
        self.current_id = None
        self.sigCurrentCase.emit(None)
        closing = self.session
        if closing is not None:
            closing.case_changed.disconnect(self._sigCoreCaseChanged.emit)
            closing.save_failed.disconnect(self._forward_save_failure)
            try:
                closing.close()
            except OSError as error:
                self.warn("Autosave failed", str(error))
        self.session = None
        self._indexed = None
        self.ai.restored_under = None
        self.follow_top = False
        self.images.clear()
        self.heatmaps.clear()
        self.rows.clear()
        self.findings.clear()
        self.worklist_model.set_rows([])
        if closing is not None:
            long_lived.release()  # the closed session's objects
        self.sigTitleChanged.emit("")

    def close(self) -> None:
        """Stop all background work and close the session (a last save)."""
        self.cancel_work()
        self.case_images.cancel()
        self.model_queue.close()
        self.pool.shutdown()
        self._close_session()

    # -- the case on screen -------------------------------------------------------------------------
    @Slot(str)
    def show_case(self, image_id: str) -> None:
        """The reader picked this case (a click or a key in the list): show it, and stop following the top."""
        if image_id == self.current_id:
            return  # also the echo of the views selecting the case this controller chose
        self.follow_top = False
        if self.session is None:
            self.current_id = image_id  # a provisional row while the folder is read: shown once it is
            return
        self._make_current(image_id)

    @Slot(int)
    def step_case(self, step: int) -> None:
        """The next (+1) or previous (-1) case of the worklist as shown."""
        self.follow_top = False
        worklist = self.worklist_model
        row = worklist.row_of(self.current_id) if self.current_id else -1
        image_id = worklist.image_id_at(max(0, min(row + step, worklist.rowCount() - 1)))
        if image_id is not None and image_id != self.current_id and self.session is not None:
            self._make_current(image_id)

    @Slot()
    def reader_acted(self, *_: object) -> None:
        """A key, click or wheel on the film or the list: the case stays where the reader put it."""
        self.follow_top = False

    def _follow_the_top(self) -> None:
        top = self.worklist_model.image_id_at(0)
        if self.follow_top and self.session is not None and top not in (None, self.current_id):
            self._make_current(top)

    def current_case(self) -> Case | None:
        """The case on screen; None also while a folder is listed (a picked row has no session yet)."""
        if self.session is None or self.current_id is None:
            return None
        return self.session.case(self.current_id)

    def _make_current(self, image_id: str) -> None:
        assert self.session is not None  # only called with a session open
        case = self.session.case(image_id)
        self.current_id = image_id
        self.sigCurrentCase.emit(case)
        self.update_info(case)
        jobs = [] if case.has_ai_result else [model_job(JobKind.PREDICT, case)]
        if self.heatmaps_wanted and image_id not in self.heatmaps:
            jobs.append(model_job(JobKind.HEATMAP, case))
        if jobs:
            self.model_queue.prioritise(jobs)
        cached = self.images.get(image_id)
        if cached is not None:
            self._show_pixels(image_id, cached)
            return
        self.sigMessage.emit(f"Loading {case.display_id}…", 0)
        self.case_images.load(image_id, case.path)

    @Slot(str, object)
    def _image_loaded(self, image_id: str, image: Any) -> None:
        if image_id == self.current_id:
            self._show_pixels(image_id, image)

    def _show_pixels(self, image_id: str, image: Any) -> None:
        self.sigPixels.emit(image_id, image)
        self.sigHeatmap.emit(image_id, self.heatmaps.get(image_id))
        self.sigMessage.emit("", 0)
        self.sigCaseShown.emit(image_id)
        following = self.worklist_model.image_id_at(self.worklist_model.row_of(image_id) + 1)
        if following is not None and self.session is not None:
            self.case_images.prefetch(following, self.session.case(following).path)

    @Slot(str)
    def _image_failed(self, reason: str) -> None:
        if self.current_id is not None:
            self.sigImageFailed.emit(self.current_id, reason)
        self.sigMessage.emit("", 0)

    def update_info(self, case: Case) -> None:
        self.sigCaseFields.emit(case_fields(case))
        self.sigFindingFields.emit(self.findings.finding_fields(case))

    @Slot(bool)
    def set_heatmaps_wanted(self, wanted: bool) -> None:
        """The heatmap overlay was switched on or off; on, the case on screen gets its Grad-CAM first."""
        self.heatmaps_wanted = wanted
        case = self.current_case()
        if wanted and case is not None and case.image_id not in self.heatmaps:
            self.model_queue.prioritise([model_job(JobKind.HEATMAP, case)])

    @Slot(object)
    def set_status(self, status: ReviewStatus | str) -> None:
        from pneumoviewer.review.case import ReviewStatus

        if self.importing:
            self.sigMessage.emit("Annotations are being imported: review again in a moment", 4000)
        elif self.session is not None and self.current_id is not None:
            self.session.set_status(self.current_id, ReviewStatus(status))

    # -- the AI -------------------------------------------------------------------------------------
    @Slot()
    def warm_up(self) -> None:
        """Import the review stack on a worker and start loading the model in its child process, so that
        neither the first opening nor the first prediction waits for them. While a folder is being opened
        the model starts once its first rows are listed: its load's CPU would delay them."""
        self.pool.start(Worker(tasks.import_review_stack))  # so that a folder opened later imports nothing
        if self._awaiting_first_rows:
            self._warm_up_deferred = True
        else:
            self.model_queue.warm_up()

    def _first_rows_listed(self) -> None:
        self._awaiting_first_rows = False
        if self._warm_up_deferred:
            self._warm_up_deferred = False
            self.model_queue.warm_up()

    @Slot(bool)
    def set_score_unvalidated(self, wanted: bool) -> None:
        """Score images the AI is not validated for (io.ai_scope) too, or stop queueing them."""
        self.ai.set_score_unvalidated(wanted)

    @Slot()
    def predict_all(self) -> None:
        """Queue the AI for every case in worklist order (again after a model change: edits stay)."""
        self.ai.predict_all()

    @Slot(object)
    def use_model(self, checkpoint: Path) -> None:
        """Predict with `checkpoint` from now on: every case again (edits, statuses and undo stay)."""
        self.ai.use_model(checkpoint)

    @Slot(object)
    def set_triage_sensitivity(self, sensitivity: float | None) -> None:
        """Flag cases at the model's most specific point reaching `sensitivity` (None: the card's triage point)."""
        self.triage_sensitivity = sensitivity
        self.apply_triage_point()

    def apply_triage_point(self) -> None:
        """Put the red flag where the reader asked on the loaded model's curve, and redraw every flag now."""
        point = self.findings.choose_triage_point(self.triage_sensitivity)
        if self.session is not None:
            for case in self.session.cases:  # only the rows whose flag or probability changes: a slider drag
                row = self.worklist_model.row(case.image_id)  # over a large folder stays smooth
                flagged, probability = self.findings.flagged(case), self.findings.probability(case)
                if row is not None and (row.flagged, row.probability) != (flagged, probability):
                    self.worklist_model.update_row(case.image_id, flagged=flagged, probability=probability)
        shown = self.current_case()
        if shown is not None:
            self.update_info(shown)
        self.sigTriagePoint.emit(self.findings.operating_points, point)

    # -- case changes (edits, statuses, AI) -----------------------------------------------------------
    @Slot(object, object)
    def _case_changed(self, case: Case, change: CaseChange) -> None:
        from pneumoviewer.review.case import CaseChange

        self.sigCaseChanged.emit(case, change)
        if change is CaseChange.MASK:
            self.findings.forget_mask(case.image_id)
        if change is CaseChange.STATUS:
            self._update_counter()
        if case.image_id == self.current_id:
            self.rows.refresh(case)
            self.sigFindingFields.emit(self.findings.finding_fields(case))
        else:  # other cases change in bulk (an import, the AI sweep): their rows a few ms at a time
            self.rows.later(case)

    def _update_counter(self) -> None:
        self.sigCounter.emit(counter_text(self.session))

    # -- annotation files in and out (each runs as the one task) --------------------------------------
    def export_csv(self, path: Path, convention: RleConvention | None = None, scope: ExportScope | None = None) -> None:
        """Write the cases' masks as a challenge-format CSV, in a worker (default: relative RLE, reviewed cases)."""
        if self.session is not None:
            self.transfers.export_csv(self.session.cases, path, convention, scope)

    def export_pngs(self, folder: Path, scope: ExportScope | None = None) -> None:
        """One PNG mask per case, in a worker (default: the reviewed cases)."""
        if self.session is not None:
            self.transfers.export_pngs(self.session.cases, folder, scope)

    def export_dicom(self, folder: Path, scope: ExportScope | None = None) -> None:
        """A DICOM Segmentation and a burned-in overlay per case into `folder`, in a worker (default: the
        reviewed cases); accepted AI masks name the loaded model by its fingerprint."""
        if self.session is not None:
            self.transfers.export_dicom(self.session.cases, folder, self.ai.model_version(), scope)

    def import_csv(self, path: Path, convention: RleConvention | None = None) -> None:
        """Load a challenge-format CSV as the editable masks, in a worker (default: relative RLE)."""
        if self.session is not None:
            self.transfers.import_csv(self.session, path, convention)

    @property
    def importing(self) -> bool:
        """An import writes masks on its own thread: edits and statuses wait."""
        return self.transfers.importing

    # -- background work ------------------------------------------------------------------------------
    def refresh_busy(self) -> None:
        if self.transfers.task is None and not self.model_queue.running:
            self.sigIdle.emit()

    @Slot()
    def cancel_work(self) -> None:
        self.model_queue.cancel()
        self.transfers.cancel()

    def warn(self, title: str, text: str) -> None:
        self.sigMessage.emit(f"{title}: {text.splitlines()[0] if text else ''}", 15000)
        self.sigWarning.emit(title, text)
