"""The AI queue: one worker thread runs every model job (predictions and Grad-CAM) in turn.

One worker, because the model is one set of weights on a 2-core laptop: parallel forwards would
only fight for the cores. The case on screen jumps the queue; the rest of the folder follows in the
order given (the worklist order). A job asked for again while it waits, runs or its result is on
its way to the window is not queued a second time, so the case on screen, asked for by the folder and
by the reader, goes through the network once per model; once its result is in, the caller decides
(the window asks again only for "Predict all cases"). The worker hands each job to where the model
runs (model_runner.py: a child process for the app's checkpoints, so torch never loads in the
window's process) and waits for its result.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, Signal

from pneumoviewer.ui.model_runner import (
    ChildProcessGone,
    ChildProcessModel,
    InThreadModel,
    JobKey,
    JobKind,
    JobResult,
    ModelJob,
    ModelLoaded,
    default_predictor,
    job_key,
    lower_this_threads_priority,
    start_model,
)
from pneumoviewer.ui.workers import Progress, Worker, WorkerPool

_LOG = logging.getLogger(__name__)

class ModelQueue(QObject):
    sigPredicted = Signal(str, object)  # image_id, AiFinding
    sigHeatmap = Signal(str, object)  # image_id, float32 HxW in [0, 1]
    sigJobFailed = Signal(str, str)  # image_id, reason
    sigModelFailed = Signal(str)  # the model itself cannot be loaded
    sigModelReady = Signal(str, str)  # which model is loaded; why the chosen one was refused ("" when it was not)
    sigProgress = Signal(int, int, str)  # done, total, description
    sigRunningChanged = Signal(bool)

    def __init__(
        self, pool: WorkerPool, predictor_factory: Callable[[], Any] = default_predictor,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = pool
        self._predictor_factory = predictor_factory
        self._lock = threading.Lock()
        self._pending: deque[ModelJob] = deque()
        self._queued: set[JobKey] = set()  # the keys of the pending jobs
        # Jobs a worker took under the current model: running, or their result not yet delivered.
        self._taken: set[JobKey] = set()
        self._pending_predictions = 0  # the progress counts images predicted, not jobs
        self._worker: Worker | None = None
        self.model_error: str | None = None
        self.model_card: dict[str, Any] | None = None
        self.model_key: str | None = None  # the loaded model's fingerprint (GUI thread's copy, set on delivery)
        self.score_unvalidated = False  # run jobs with an ai_warning too (the reader asked for it)
        # Loaded by a worker and reused by every later one; replaced (and closed) by `use_model` and `close`.
        self._model: InThreadModel | ChildProcessModel | None = None
        self._closing = threading.Event()

    @property
    def running(self) -> bool:
        return self._worker is not None

    def pending(self) -> list[ModelJob]:
        with self._lock:
            return list(self._pending)

    def enqueue(self, jobs: list[ModelJob]) -> None:
        """Add jobs at the back (the background sweep of a folder); one already queued stays where it is."""
        jobs = self._wanted(jobs)
        with self._lock:
            for job in jobs:
                key = job_key(job)
                if key not in self._queued and key not in self._taken:
                    self._queued.add(key)
                    self._pending.append(job)
                    self._pending_predictions += job.kind is JobKind.PREDICT
        self._ensure_running()

    def prioritise(self, jobs: list[ModelJob]) -> None:
        """Put jobs at the front, in the given order (the case on screen); one already queued moves there."""
        jobs = self._wanted(jobs)
        with self._lock:
            for job in reversed(jobs):
                key = job_key(job)
                if key in self._taken:
                    continue  # running already: its result comes once
                if key in self._queued:
                    self._unqueue(key)
                self._queued.add(key)
                self._pending.appendleft(job)
                self._pending_predictions += job.kind is JobKind.PREDICT
        self._ensure_running()

    def _unqueue(self, key: JobKey) -> None:
        """Under the lock: take the pending job with this key out of the queue."""
        for index, job in enumerate(self._pending):
            if job_key(job) == key:
                del self._pending[index]
                self._queued.discard(key)
                self._pending_predictions -= job.kind is JobKind.PREDICT
                return

    def _clear_pending(self) -> None:
        """Under the lock: drop every pending job."""
        self._pending.clear()
        self._queued.clear()
        self._pending_predictions = 0

    def _wanted(self, jobs: list[ModelJob]) -> list[ModelJob]:
        """Images the AI is not validated for are left out unless the reader asked for them."""
        return [job for job in jobs if job.ai_warning is None or self.score_unvalidated]

    def use_model(self, predictor_factory: Callable[[], Any]) -> None:
        """Switch to another model: pending jobs are dropped, the next job loads the new one."""
        self.cancel()
        with self._lock:
            self._predictor_factory = predictor_factory
        self._drop_model()
        self.model_error = None
        self.model_card = None
        self.model_key = None

    def close(self) -> None:
        """The app is closing: stop the model's child process, also one still loading (before the workers
        are shut down, which then end at once)."""
        self._closing.set()
        self.cancel()
        self._drop_model()

    def _drop_model(self, only: InThreadModel | ChildProcessModel | None = None) -> None:
        """Forget the loaded model (or only `only`, if it still is the loaded one) and stop it; a worker still
        running it was cancelled, or its model died, so it gets no more results from it."""
        with self._lock:
            old = self._model
            if old is None or (only is not None and old is not only):
                return
            self._model = None
        old.close()

    def warm_up(self) -> None:
        """Load the model now (in the worker), so the first prediction does not wait for torch."""
        self._ensure_running()

    def cancel(self) -> None:
        """Drop every pending job and stop the one in progress at its next stage boundary; a job asked
        for from now on runs even where the stopped one was still finishing (another model, another session)."""
        with self._lock:  # one step with _pop: a cancelled worker never takes a job queued after this
            self._clear_pending()
            self._taken.clear()
            if self._worker is not None:
                self._worker.cancel()

    def _ensure_running(self) -> None:
        if self._worker is not None or self.model_error is not None or self._closing.is_set():
            return
        worker = Worker(self._drain, pass_cancel=True)
        worker.sigYielded.connect(self._deliver)
        worker.sigProgress.connect(self.sigProgress)
        worker.sigErrored.connect(self._model_failed)
        worker.sigDone.connect(self._worker_done)
        self._worker = worker
        self.sigRunningChanged.emit(True)
        self._pool.start(worker)

    def _pop(self, cancel: Callable[[], bool]) -> ModelJob | None:
        """The next job, or None when the queue is empty or this worker was cancelled.

        Jobs queued after a cancel wait for the next worker, which starts when this one ends.
        """
        with self._lock:
            if not self._pending or cancel():
                return None
            job = self._pending.popleft()
            key = job_key(job)
            self._queued.discard(key)
            self._taken.add(key)
            self._pending_predictions -= job.kind is JobKind.PREDICT
            return job

    def _still_to_predict(self) -> int:
        """How many predictions are pending now (read when a result is in: jobs queued while it ran count)."""
        with self._lock:
            return self._pending_predictions

    def _let_go(self, job: ModelJob) -> None:
        """The job may be asked for again: its result was delivered, or it was cancelled midway."""
        with self._lock:
            self._taken.discard(job_key(job))

    def _drain(self, cancel: Callable[[], bool]) -> Generator[Progress, None, int]:
        """Worker thread: load the model once, then run jobs until the queue is empty."""
        lower_this_threads_priority()
        model = self._model
        if model is None:
            yield Progress(0, 0, "Loading the AI model…")
            factory = self._predictor_factory
            model = start_model(factory)
            closing = self._closing.is_set
            try:
                loaded = model.load(closing)  # an error here is the model's failure (sigErrored)
            except ChildProcessGone as gone:
                model.close()
                if closing():
                    return 0
                _LOG.warning("%s; the model runs in the app's process instead", gone)  # e.g. no child can start
                model = InThreadModel(factory)
                loaded = model.load(closing)
            except BaseException:
                model.close()
                raise
            with self._lock:
                current = factory is self._predictor_factory
                if current:
                    self._model = model
            if not current:  # another model was chosen meanwhile: the next worker loads it
                model.close()
                return 0
            yield Progress(0, 0, "AI model loaded", loaded)
        predicted = 0
        while True:
            job = self._pop(cancel)
            if job is None:
                return predicted
            result = model.run(job, cancel)
            if result is None:  # cancelled midway
                self._let_go(job)
                return predicted
            predicted += job.kind is JobKind.PREDICT
            total = predicted + self._still_to_predict()
            text = (f"Predicting: {predicted} of {total}" if job.kind is JobKind.PREDICT or total
                    else "Grad-CAM of the case on screen")
            yield Progress(predicted, total, text, result)
            if not model.alive:  # the child died with this job (its error says so): the next worker starts another
                self._drop_model(only=model)
                return predicted

    def _deliver(self, result: JobResult | ModelLoaded) -> None:
        if isinstance(result, ModelLoaded):
            self.model_card = result.card
            self.model_key = result.model_key
            self.sigModelReady.emit(result.description, result.refused or "")
            return
        job = result.job
        if result.error is not None:
            self.sigJobFailed.emit(job.image_id, result.error)
        elif job.kind is JobKind.PREDICT:
            self.sigPredicted.emit(job.image_id, result.value)
        else:
            self.sigHeatmap.emit(job.image_id, result.value)
        self._let_go(job)  # after the slots took the result in: the case now has it, or its heatmap is cached

    def _model_failed(self, error: Exception) -> None:
        self.model_error = str(error)
        with self._lock:
            self._clear_pending()
        self.sigModelFailed.emit(self.model_error)

    def _worker_done(self) -> None:
        self._worker = None
        self.sigRunningChanged.emit(False)
        if self.pending():  # jobs added while the worker was finishing
            self._ensure_running()
