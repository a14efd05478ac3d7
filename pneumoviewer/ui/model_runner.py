"""Where the AI model runs: in a child process (the app's models), or on the AI thread (any other predictor).

The app's model is a checkpoint file (`CheckpointModel`): it is loaded and run in a spawned child
process (`ChildProcessModel`), so the window's process never imports torch and never waits for the
GIL behind the model's 3-4 s of imports and each job's Python (the pre- and post-processing, the
lesion measures): those waits were the worklist's longest stalls (docs/benchmarks.md). Jobs go to the
child and rows of results come back through a pipe; the child runs at a lower priority, stops a job at
its next stage boundary when cancelled, and a child that dies fails its job and is started again for
the next one. A predictor factory that cannot cross a process boundary (a test's stand-in, a wrapped
model) runs on the AI thread instead (`InThreadModel`), with the same job function (`run_job`).
No Qt here: the AI queue (model_queue.py) drives either from its worker thread.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from enum import Enum
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumoviewer import paths
from pneumoviewer.errors import CancelCheck
from pneumoviewer.pacing import garbage_collection_paused

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

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

    prediction: Any  # pneumoviewer.model.prediction.Prediction
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


def triton_left_unimported() -> None:
    """Make `import triton` fail in this process, as on a machine without it (`sys.modules[name] = None`).

    PyTorch's CUDA builds bring Triton, the GPU kernel compiler of `torch.compile`, which the app never
    uses; torchvision's ops import `torch._dynamo`, which imports Triton when it is installed: 0.3 s of
    Python and one extension module initialised under the GIL for 30-230 ms, the window's longest wait
    while the model loaded. Without it PyTorch takes its no-Triton path (a CPU build's); predictions and
    Grad-CAM are unchanged (tests/test_ui_threads.py).
    """
    sys.modules.setdefault("triton", None)  # type: ignore[arg-type]  # None is import's own "not available" mark


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
        triton_left_unimported()
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






@dataclass(frozen=True)
class CheckpointModel:
    """The app's way to name its model: a checkpoint file, or None for the bundled one; calling it loads
    the model (or the bundled one and why, when the file is refused). Picklable: it runs in a child."""

    checkpoint: Path | None = None
    bundled: Path | None = None  # the bundled model's file; None: looked up by `resolved`, in the app's process

    def resolved(self) -> CheckpointModel:
        return self if self.bundled is not None else replace(self, bundled=paths.default_model_path())

    def __call__(self) -> ChosenModel:
        from pneumoviewer.model.inference import Predictor

        bundled = self.resolved().bundled
        assert bundled is not None  # resolved
        if self.checkpoint is None:
            return ChosenModel(Predictor.cached(bundled))
        predictor, problem = Predictor.chosen_or_default(self.checkpoint, bundled)
        return ChosenModel(predictor, None if problem is None else str(problem))


default_predictor = CheckpointModel()  # the bundled model


def run_job(predictor: Any, model_key: str | None, job: ModelJob, cancel: CancelCheck) -> Any:
    """One job's work, wherever the model runs: the image read, then its AiFinding or its Grad-CAM heatmap."""
    from pneumoviewer.io.images import load_radiograph
    from pneumoviewer.model.cam import grad_cam
    from pneumoviewer.review.case import lesion_stats

    pixels = load_radiograph(job.path).pixels
    if job.kind is JobKind.PREDICT:
        prediction = predictor.predict(pixels, cancel=cancel)
        return AiFinding(prediction, lesion_stats(prediction.mask, job.pixel_spacing_mm), model_key)
    return grad_cam(predictor, pixels)


def _loaded(factory: Callable[[], Any]) -> tuple[Any, ModelLoaded]:
    """The predictor `factory` loads, and what the window is told of it."""
    started = time.perf_counter()
    chosen = _load_model(factory)
    predictor, model_key = chosen.predictor, _model_key(chosen.predictor)
    name = Path(getattr(predictor, "checkpoint", "model")).name
    card = getattr(predictor, "card", None)
    return predictor, ModelLoaded(f"{name}, loaded in {time.perf_counter() - started:.1f} s",
                                  {"file": str(getattr(predictor, "checkpoint", name)),
                                   **(card.to_dict() if card is not None else {})}, chosen.refused, model_key)


class ModelLoadError(RuntimeError):
    """The model could not be loaded (the message says why); the AI queue reports it once."""


class ChildProcessGone(RuntimeError):
    """The model's child process stopped before it answered (it could not start, or it died)."""


class InThreadModel:
    """A predictor loaded and run on the calling thread (the AI queue's worker)."""

    alive = True  # for as long as this thread runs

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._predictor: Any = None
        self._model_key: str | None = None

    def load(self, give_up: CancelCheck) -> ModelLoaded:  # noqa: ARG002 - a load in this thread runs to its end
        self._predictor, loaded = _loaded(self._factory)
        self._model_key = loaded.model_key
        return loaded

    def run(self, job: ModelJob, cancel: CancelCheck) -> JobResult | None:
        """The job's result (its error when this image cannot be processed); None when it was cancelled midway."""
        try:
            return JobResult(job, run_job(self._predictor, self._model_key, job, cancel))
        except Exception as error:  # noqa: BLE001 - one bad image must not stop the sweep
            return None if cancel() else JobResult(job, error=str(error))

    def close(self) -> None:
        self._predictor = None


class ChildProcessModel:
    """A model loaded and run in a spawned child process; `load` and `run` block the calling thread (not
    the GIL) until the child answers. `close` may be called from any thread."""

    POLL_S = 0.05  # how often a waiting job looks at its cancel flag

    def __init__(self, factory: CheckpointModel) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        self._cancel = context.Event()
        # Daemonic: it ends with the app, even a killed one (its pipe closes, its next read fails).
        self._process = context.Process(target=_serve, args=(child_end, factory, self._cancel),
                                        name="pneumoviewer-ai", daemon=True)
        self._process.start()
        child_end.close()
        self._gone = False  # its pipe broke: it is dying, even if not reaped yet

    def load(self, give_up: CancelCheck) -> ModelLoaded:
        """What the child loaded; `give_up()` (the app closing) stops the child and raises ChildProcessGone."""
        reply = self._reply(give_up, on_cancel=self._process.terminate)
        if isinstance(reply, ModelLoaded):
            return reply
        if isinstance(reply, str):
            raise ModelLoadError(reply)
        raise ChildProcessGone(f"the AI process stopped while loading the model (exit code {self._process.exitcode})")

    def run(self, job: ModelJob, cancel: CancelCheck) -> JobResult | None:
        self._cancel.clear()
        try:
            self._connection.send(job)
        except (OSError, ValueError):  # the child is gone (closed, or it died)
            self._gone = True
            return None if cancel() else JobResult(job, error=self._stopped())
        reply = self._reply(cancel)
        if isinstance(reply, JobResult):
            return reply
        return None if cancel() else JobResult(job, error=self._stopped())

    def _reply(self, cancel: CancelCheck, on_cancel: Callable[[], None] | None = None) -> Any:
        """The child's next message; None once it is gone. A cancel is passed on while waiting (by
        default the child stops the job at its next stage boundary and says so)."""
        try:
            while not self._connection.poll(self.POLL_S):
                if cancel():
                    (on_cancel or self._cancel.set)()
                if not self._process.is_alive() and not self._connection.poll(0):
                    self._gone = True
                    return None
            return self._connection.recv()
        except (EOFError, OSError, ValueError):
            self._gone = True
            return None

    def _stopped(self) -> str:
        self._process.join(timeout=1)  # reaped, for its exit code
        return f"the AI process stopped (exit code {self._process.exitcode}); the next image starts it again"

    @property
    def alive(self) -> bool:
        return not self._gone and self._process.is_alive()

    def close(self) -> None:
        """Stop the child now: it holds nothing to save (SIGTERM ends it at once). The pipe is left to close
        with this object: a worker may still be polling it, and its next read then ends (EOF)."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)


def start_model(factory: Callable[[], Any]) -> InThreadModel | ChildProcessModel:
    """Where `factory`'s model runs: a child process for the app's checkpoints, this thread otherwise."""
    return ChildProcessModel(factory.resolved()) if isinstance(factory, CheckpointModel) else InThreadModel(factory)


def _serve(connection: Connection, factory: CheckpointModel, cancel: Event) -> None:
    """The child process: load the model, tell the parent, then answer each job until told to stop."""
    lower_this_threads_priority()  # the child's main thread: the process, and the threads it starts
    try:
        predictor, loaded = _loaded(factory)
    except Exception as error:  # noqa: BLE001 - any failure to load is the message the window shows
        connection.send(str(error) or type(error).__name__)
        return
    connection.send(loaded)
    while True:
        try:
            job = connection.recv()
        except EOFError:  # the app is gone
            return
        if job is None:
            return
        try:
            reply: Any = JobResult(job, run_job(predictor, loaded.model_key, job, cancel.is_set))
        except Exception as error:  # noqa: BLE001 - one bad image must not stop the sweep
            reply = "cancelled" if cancel.is_set() else JobResult(job, error=str(error))
        connection.send(reply)
