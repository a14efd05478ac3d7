"""The review controller's AI side: the model in use, and what the AI queue reports, into the app's state.

`AiBridge` is a QObject with no widgets that the review controller owns. It switches models, keeps
the one record of which model made the results reused when the session opened (`restored_under`),
and turns the AI queue's reports (a prediction, a heatmap, a failed job, the model ready or refused)
into the session, the worklist rows, the findings and the controller's `sig…` signals, which the views
draw. The state it reads (the session, the case on screen, the caches) stays the controller's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Slot

from pneumoviewer.io.ai_scope import ai_scope_warning
from pneumoviewer.ui.model_runner import AiFinding, CheckpointModel, JobKind, ModelJob

if TYPE_CHECKING:  # the review stack is imported by the workers, after the window is up (see tasks.py)
    from pneumoviewer.review.case import Case, LesionStats
    from pneumoviewer.review.session import ReviewSession
    from pneumoviewer.ui.controller import ReviewController
    from pneumoviewer.ui.tasks import RestoredPredictions


def model_job(kind: JobKind, case: Case) -> ModelJob:
    assert case.path is not None  # every case of a session was read from a file
    return ModelJob(kind, case.image_id, case.path, case.pixel_spacing_mm, ai_scope_warning(case.metadata))


class AiBridge(QObject):
    def __init__(self, controller: ReviewController) -> None:
        super().__init__(controller)
        self.controller = controller
        self.restored_under: str | None = None  # the model key of AI results reused when the session opened
        # The worker putting back a switched-to model's stored results, and the session it puts them in.
        self._restoring: tuple[QObject, ReviewSession] | None = None
        mq = controller.model_queue
        mq.sigPredicted.connect(self._predicted)
        mq.sigHeatmap.connect(self._heatmap_ready)
        mq.sigJobFailed.connect(self._ai_job_failed)
        mq.sigModelFailed.connect(self._model_failed)
        mq.sigModelReady.connect(self._model_ready)
        mq.sigProgress.connect(self._ai_progress)
        mq.sigRunningChanged.connect(self._ai_running_changed)

    def take_restored(self, restored: RestoredPredictions | None) -> dict[str, LesionStats]:
        """The stored results an opening reused, by image id, recorded as findings; {} when they came
        from another model than the one loaded meanwhile (those cases are predicted again)."""
        lesions: dict[str, LesionStats] = {}
        if restored is not None and self.controller.model_queue.model_key in (None, restored.model_key):
            lesions = restored.lesions
        self.restored_under = restored.model_key if lesions and restored is not None else None
        if restored is not None and self.controller.model_checkpoint is not None:  # named before the model loads
            self.controller.findings.model_names.setdefault(
                restored.model_key, self.version_label(self.controller.model_checkpoint, None, restored.model_key))
        for image_id, image_lesions in lesions.items():
            self.controller.findings.record_restored(image_id, image_lesions, self.restored_under)
        return lesions

    def predict_all(self) -> None:
        """Queue the AI for every case in worklist order (again after a model change: edits stay)."""
        session = self.controller.session
        if session is not None:
            self.controller.model_queue.enqueue([model_job(JobKind.PREDICT, case) for case in session.worklist()])

    def set_score_unvalidated(self, wanted: bool) -> None:
        """Score images the AI is not validated for (other modalities, body parts) too, or not from now on."""
        c = self.controller
        c.model_queue.score_unvalidated = c.findings.score_unvalidated = wanted
        if wanted and c.session is not None:
            c.model_queue.enqueue([model_job(JobKind.PREDICT, case) for case in c.session.worklist()
                                   if not case.has_ai_result and ai_scope_warning(case.metadata)])
        self._refresh_current_findings()

    def use_model(self, checkpoint: Path) -> None:
        """Predict with `checkpoint` from now on (edits, statuses and undo stay): the results stored for
        it earlier (a model switched back to) are put back off the GUI thread while it loads, and the
        network runs on every other case."""
        from pneumoviewer.ui import tasks
        from pneumoviewer.ui.workers import Worker

        c = self.controller
        checkpoint = Path(checkpoint)

        c.model_checkpoint = checkpoint
        self.restored_under = None
        c.model_queue.use_model(CheckpointModel(checkpoint))
        c.heatmaps.clear()
        if c.current_id is not None:
            c.sigHeatmap.emit(c.current_id, None)
        c.worklist_model.update_rows((row.image_id for row in c.worklist_model.rows()), error=None)
        c.sigAiState.emit(f"AI: loading {checkpoint.name}…", "")
        c.model_queue.warm_up()
        if c.session is None:
            return
        worker = Worker(tasks.restore_predictions, c.session, checkpoint)
        self._restoring = (worker, c.session)
        worker.sigFinished.connect(self._stored_results_restored)
        worker.sigErrored.connect(self._stored_results_unreadable)
        c.pool.start(worker)

    @Slot(object)
    def _stored_results_unreadable(self, _error: Exception) -> None:
        self._queue_after_restore(None)  # the store is only a cache: every case is predicted instead

    @Slot(object)
    def _stored_results_restored(self, restored: RestoredPredictions | None) -> None:
        self._queue_after_restore(restored)

    def _queue_after_restore(self, restored: RestoredPredictions | None) -> None:
        c = self.controller
        if self._restoring is None or self.sender() is not self._restoring[0]:
            return  # another model was chosen meanwhile
        restored_into, self._restoring = self._restoring[1], None
        if c.session is not restored_into:
            return  # that session was closed meanwhile: the new one's opening restores its own results
        lesions = self.take_restored(restored)
        for image_id in lesions:
            c.rows.later(c.session.case(image_id))
        c.model_queue.enqueue([model_job(JobKind.PREDICT, case) for case in c.session.worklist()
                               if case.image_id not in lesions])
        case = c.current_case()
        if case is not None:  # the case on screen first
            predict = [] if case.image_id in lesions else [model_job(JobKind.PREDICT, case)]
            heatmap = [model_job(JobKind.HEATMAP, case)] if c.heatmaps_wanted else []
            c.model_queue.prioritise([*predict, *heatmap])

    @staticmethod
    def version_label(checkpoint: Path | None, card: dict | None, model_key: str) -> str:
        """How the findings panel names a model: its registry version, "bundled", or its file, with its key."""
        from pneumoviewer.model.versions import version_name
        from pneumoviewer.paths import default_model_path

        name = version_name(card)
        if name is None and checkpoint is not None:
            bundled = Path(checkpoint).resolve() == default_model_path().resolve()
            name = "bundled" if bundled else Path(checkpoint).name
        return f"{name or 'model'} ({model_key[:8]})"

    def model_version(self) -> str | None:
        """What exports name the loaded model by: its fingerprint, after its registry version when it has one."""
        from pneumoviewer.model.versions import version_name

        key = self.controller.model_queue.model_key
        name = version_name(self.controller.model_queue.model_card)
        return f"{name}/{key}" if key and name else key

    # -- what the AI queue reports ------------------------------------------------------------------
    @Slot(str, object)
    def _predicted(self, image_id: str, finding: AiFinding) -> None:
        c = self.controller
        if c.session is None or c.worklist_model.row(image_id) is None:
            return  # a result for a session that was closed meanwhile
        c.findings.record_prediction(image_id, finding)
        c.session.apply_prediction(image_id, finding.prediction, finding.model_key)

    @Slot(str, object)
    def _heatmap_ready(self, image_id: str, heatmap: np.ndarray) -> None:
        self.controller.heatmaps.put(image_id, heatmap)
        self.controller.sigHeatmap.emit(image_id, heatmap)

    @Slot(str, str)
    def _ai_job_failed(self, image_id: str, reason: str) -> None:
        c = self.controller
        c.worklist_model.update_row(image_id, error=reason)
        c.findings.record_failure(image_id, reason)
        if image_id == c.current_id and c.session is not None:
            c.update_info(c.session.case(image_id))
            c.sigMessage.emit(f"AI could not process this image: {reason}", 10000)

    @Slot(str, str)
    def _model_ready(self, description: str, refused: str) -> None:
        c = self.controller
        if not refused:
            c.sigAiState.emit(f"AI: {description}", "")
        else:  # the chosen model was refused and the bundled one took its place: a lasting red note
            c.sigAiState.emit(f"AI: {description} (bundled; the chosen model was not used)", refused)
            c.warn("Model not used", f"{refused}\nThe bundled model is used instead.")
        if self.restored_under is not None and c.model_queue.model_key != self.restored_under:
            self.restored_under = None  # the results reused at opening came from another model than this one
            self.predict_all()
        if c.model_queue.model_key is not None:
            c.findings.model_names[c.model_queue.model_key] = self.version_label(
                c.model_checkpoint, c.model_queue.model_card, c.model_queue.model_key)
        c.findings.set_model_card(c.model_queue.model_card)
        c.findings.model_problem = None
        c.apply_triage_point()  # the reader's pick on this model's curve; refreshes the rows and findings

    @Slot(str)
    def _model_failed(self, reason: str) -> None:
        c = self.controller
        c.sigAiState.emit("AI unavailable", reason)
        c.findings.model_problem = "no AI model (see the status bar)"
        self._refresh_current_findings()
        c.worklist_model.update_rows((row.image_id for row in c.worklist_model.rows() if row.score is None),
                                     error=f"AI unavailable: {reason}")
        # No modal box: the red status-bar note (reason in its tooltip) stays while viewing and editing work.
        c.sigMessage.emit(f"The AI model could not be loaded, so there will be no predictions: {reason}", 30000)

    def _refresh_current_findings(self) -> None:
        case = self.controller.current_case()
        if case is not None:
            self.controller.update_info(case)

    @Slot(int, int, str)
    def _ai_progress(self, done: int, total: int, text: str) -> None:
        if self.controller.transfers.task is None:  # a task's own progress comes first
            self.controller.sigProgress.emit(done, total, text)

    @Slot(bool)
    def _ai_running_changed(self, running: bool) -> None:
        if not running:
            self.controller.refresh_busy()
