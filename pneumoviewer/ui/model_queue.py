"""The AI queue: one worker thread runs every model job (predictions and Grad-CAM) in turn.

One thread, because the model is one set of weights on a 2-core laptop: parallel forwards would
only fight for the cores. The case on screen jumps the queue; the rest of the folder follows in the
order given (the worklist order). A job asked for again while it waits, runs or its result is on
its way to the window is not queued a second time, so the case on screen, asked for by the folder and
by the reader, goes through the network once per model; once its result is in, the caller decides
(the window asks again only for "Predict all cases").
torch is imported only inside the worker, never at start-up.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import importlib.util
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from pneumoviewer.ui.workers import Progress, Worker, WorkerPool

if TYPE_CHECKING:
    from pneumoviewer.review.case import LesionStats


class JobKind(Enum):
    PREDICT = "predict"
    HEATMAP = "heatmap"


@dataclass(frozen=True)
class ModelJob:
    kind: JobKind
    image_id: str
    path: Path
    pixel_spacing_mm: tuple[float, float] | None = None  # for the lesion area, computed off the GUI thread
    ai_warning: str | None = None  # why the AI is not validated for this image (io.ai_scope): run only on request


JobKey = tuple[JobKind, str]  # what makes two jobs the same work: the kind and the image


def job_key(job: ModelJob) -> JobKey:
    return job.kind, job.image_id


@dataclass(frozen=True)
class AiFinding:
    """A prediction with its lesion count and area, measured on the worker thread."""

    prediction: Any  # pneumoviewer.model.inference.Prediction
    lesions: LesionStats
    model_key: str | None = None  # model_fingerprint of the model that made it (None: not a checkpoint file)


@dataclass(frozen=True)
class ChosenModel:
    """What a predictor factory may return instead of a bare predictor: the model it loaded and, when
    that is not the one asked for (a chosen file was refused, the bundled one took its place), why."""

    predictor: Any
    refused: str | None = None


@dataclass(frozen=True)
class ModelLoaded:
    description: str  # which model, how long it took to load
    card: dict[str, Any]  # the model card (what it is, how it was trained, validation figures)
    refused: str | None = None  # why the model asked for was not used (the bundled one was)
    model_key: str | None = None  # its fingerprint, stored with its results


@dataclass(frozen=True)
class JobResult:
    job: ModelJob
    value: Any = None  # AiFinding or heatmap array
    error: str | None = None  # why this image could not be processed


def lower_this_threads_priority(niceness: int = 10) -> None:
    """Let the GUI thread win the CPU over the AI when both want it (Linux: threads have own nice)."""
    if hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        with suppress(OSError):  # not permitted here: the AI simply keeps the normal priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def preload_torch_libraries() -> None:
    """Load torch's native libraries with libc's dlopen, which ctypes calls with the GIL released.

    `import torch` loads them itself, but from inside an import, holding the GIL for the whole
    dlopen (relocating half a gigabyte of code: a quarter of a second here), so the window froze.
    Once loaded, they cost `import torch` nothing. Linux only; elsewhere torch loads them as usual.
    """
    spec = importlib.util.find_spec("torch")  # finds the package without importing it
    if not sys.platform.startswith("linux") or spec is None or spec.origin is None:
        return
    package = Path(spec.origin).parent
    dlopen = ctypes.CDLL(None).dlopen
    dlopen.restype, dlopen.argtypes = ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_int]
    # In the order and with the flags torch uses: its global dependencies first, then its extension.
    for library, flags in ((package / "lib" / "libtorch_global_deps.so", os.RTLD_NOW | os.RTLD_GLOBAL),
                           *((path, os.RTLD_NOW) for path in package.glob("_C.*.so"))):
        if library.is_file():
            dlopen(bytes(library), flags)


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while the model loads, then what survived is frozen (`gc.freeze`).

    Importing torch and its companions creates about a million objects; each full collection that
    triggers holds the GIL for 0.1-0.2 s, which were the window's freezes while the model loaded.
    Those objects live as long as the app: frozen, later collections (during a sweep) skip them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


_UNREAD_THREADS: set[int] = set()  # threads whose new modules PySide6 does not read (see below)


@contextmanager
def pyside_source_check_skipped() -> Iterator[None]:
    """PySide6's import hook reads no source of the modules this thread imports meanwhile.

    PySide6 replaces `__import__`: after each new module, `shibokensupport.feature._mod_uses_pyside`
    reads and tokenizes the module's whole source (looking for "PySide6") to set its `__feature__`
    default, and keeps the lines in `linecache`. For the ~2,700 modules of the model's load that is
    0.3-0.4 s of Python on the AI thread and ~95 MB kept; the GUI thread waits for the GIL at each
    call into Python while it paints. These modules never use PySide (`tests/test_rooms.py`) and the
    app selects no `__feature__`, so the answer on this thread is False, what reading would find;
    other threads still read. A PySide6 without that function is left as it is.
    """
    feature = sys.modules.get("shibokensupport.feature")
    check = getattr(feature, "_mod_uses_pyside", None)
    if feature is None or check is None:
        yield
        return
    # Installed once, then left: later calls only list their thread (the indexing and the AI thread may overlap).
    if not (isinstance(check, functools.partial) and check.func is _uses_pyside_unless_unread):
        feature._mod_uses_pyside = functools.partial(_uses_pyside_unless_unread, check)  # type: ignore[attr-defined]
    thread = threading.get_ident()
    _UNREAD_THREADS.add(thread)
    try:
        yield
    finally:
        _UNREAD_THREADS.discard(thread)


def _uses_pyside_unless_unread(check: Callable[[Any], bool], module: Any) -> bool:
    return threading.get_ident() not in _UNREAD_THREADS and check(module)


def _load_model(factory: Callable[[], Any]) -> ChosenModel:
    """AI thread: the model, and everything a job needs, loaded without holding up the window."""
    with garbage_collection_paused(), pyside_source_check_skipped():
        preload_torch_libraries()
        chosen = factory()
        # What every job runs, imported in this same pause (pydicom, scikit-image, Grad-CAM).
        import pneumoviewer.io.images
        import pneumoviewer.model.cam
        import pneumoviewer.review.case  # noqa: F401
    return chosen if isinstance(chosen, ChosenModel) else ChosenModel(chosen)


def _model_key(predictor: Any) -> str | None:
    """The fingerprint stored with this predictor's results (None for a predictor without a checkpoint file)."""
    from pneumoviewer.model.identity import model_fingerprint

    checkpoint = getattr(predictor, "checkpoint", None)
    if checkpoint is None:
        return None
    try:
        return model_fingerprint(checkpoint)
    except OSError:
        return None


def default_predictor() -> Any:
    from pneumoviewer.model.inference import Predictor

    return Predictor.default()


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
        # Loaded on the worker thread and reused by every later run; only that thread reads them.
        self._predictor: Any = None
        self._model_key: str | None = None

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
        self._predictor_factory = predictor_factory
        self._predictor = None  # a running worker keeps its own reference until it stops
        self._model_key = None
        self.model_error = None
        self.model_card = None
        self.model_key = None

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
        if self._worker is not None or self.model_error is not None:
            return
        worker = Worker(self._drain, pass_cancel=True)
        worker.sigYielded.connect(self._deliver)
        worker.sigProgress.connect(self.sigProgress)
        worker.sigErrored.connect(self._model_failed)
        worker.sigDone.connect(self._worker_done)
        self._worker = worker
        self.sigRunningChanged.emit(True)
        self._pool.start(worker)

    def _pop(self, cancel: Callable[[], bool]) -> tuple[ModelJob | None, int]:
        """The next job, or None when the queue is empty or this worker was cancelled; and how many
        predictions are still pending.

        Jobs queued after a cancel wait for the next worker, which starts when this one ends.
        """
        with self._lock:
            if not self._pending or cancel():
                return None, self._pending_predictions
            job = self._pending.popleft()
            key = job_key(job)
            self._queued.discard(key)
            self._taken.add(key)
            self._pending_predictions -= job.kind is JobKind.PREDICT
            return job, self._pending_predictions

    def _let_go(self, job: ModelJob) -> None:
        """The job may be asked for again: its result was delivered, or it was cancelled midway."""
        with self._lock:
            self._taken.discard(job_key(job))

    def _drain(self, cancel: Callable[[], bool]) -> Generator[Progress, None, int]:
        """Worker thread: load the model once, then run jobs until the queue is empty."""
        lower_this_threads_priority()
        if self._predictor is None:
            yield Progress(0, 0, "Loading the AI model…")
            started = time.perf_counter()
            factory = self._predictor_factory
            chosen = _load_model(factory)
            if factory is not self._predictor_factory:  # another model was chosen meanwhile: the next worker loads it
                return 0
            self._predictor = chosen.predictor
            self._model_key = _model_key(chosen.predictor)
            name = Path(getattr(self._predictor, "checkpoint", "model")).name
            card = getattr(self._predictor, "card", None)
            loaded = ModelLoaded(f"{name}, loaded in {time.perf_counter() - started:.1f} s",
                                 {"file": str(getattr(self._predictor, "checkpoint", name)),
                                  **(card.to_dict() if card is not None else {})}, chosen.refused, self._model_key)
            yield Progress(0, 0, "AI model loaded", loaded)
        predictor, model_key = self._predictor, self._model_key
        from pneumoviewer.io.images import load_radiograph
        from pneumoviewer.model.cam import grad_cam
        from pneumoviewer.review.case import lesion_stats

        predicted = 0
        while True:
            job, remaining = self._pop(cancel)
            if job is None:
                return predicted
            try:
                pixels = load_radiograph(job.path).pixels
                if job.kind is JobKind.PREDICT:
                    prediction = predictor.predict(pixels, cancel=cancel)
                    value: Any = AiFinding(prediction, lesion_stats(prediction.mask, job.pixel_spacing_mm), model_key)
                else:
                    value = grad_cam(predictor, pixels)
                result = JobResult(job, value)
            except Exception as error:  # noqa: BLE001 - one bad image must not stop the sweep
                if cancel():
                    self._let_go(job)
                    return predicted
                result = JobResult(job, error=str(error))
            predicted += job.kind is JobKind.PREDICT
            total = predicted + remaining
            text = (f"Predicting: {predicted} of {total}" if job.kind is JobKind.PREDICT or total
                    else "Grad-CAM of the case on screen")
            yield Progress(predicted, total, text, result)

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
