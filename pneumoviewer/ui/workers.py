"""Background work off the event loop: one worker per job, run on a shared thread pool.

A worker wraps a plain function or a generator function. Generator workers yield between steps;
that is where a cancel request takes effect and where progress is reported. Every worker ends with
exactly one of `sigFinished`, `sigErrored` or `sigAborted`, always delivered on the GUI thread.
"""

from __future__ import annotations

import inspect
import math
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from pneumoviewer.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """What a generator worker yields to report how far it got (and optionally a partial result)."""

    done: int
    total: int
    description: str = ""
    result: Any = None


class Worker(QObject, QRunnable):
    BATCH_MS = 100  # the first items reach the GUI thread this soon after they are read
    LATER_BATCH_MS = 400  # then this often: each batch relayouts (and repaints) the list it fills
    # `progress` reports at most this often, besides the first, a 0 and the last: one queued signal per file of a
    # 10,000-file folder kept the GUI thread's slots busy while it was indexed.
    PROGRESS_MS = 50

    sigStarted = Signal()
    sigProgress = Signal(int, int, str)  # done, total, description
    sigYielded = Signal(object)  # Progress.result when not None
    sigFinished = Signal(object)  # the function's return value
    sigErrored = Signal(object)  # the exception
    sigAborted = Signal()
    sigDone = Signal()  # after any of the three endings; lets the pool forget the worker

    def __init__(
        self,
        function: Callable[..., Any],
        *args: Any,
        pass_cancel: bool = False,
        progress_text: str | None = None,
        batch_keyword: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Run `function(*args, **kwargs)` on a pool thread.

        `pass_cancel=True` adds a `cancel` keyword: a callable that turns True once cancelled.
        `progress_text` adds a `progress(done, total)` keyword reported as "<text> <done> of <total>" (at most
        every PROGRESS_MS, and always the first call, done 0 and done == total); after a cancel, calling it
        raises `errors.Cancelled` (so a folder scan stops at the next file).
        `batch_keyword` adds that keyword: a callable taking one item at a time; the items reach
        `sigYielded` as lists, collected by the GUI thread BATCH_MS after the start and every
        LATER_BATCH_MS after the first list (one queued signal per file would flood the event loop; a
        slow next file must not hold back the ones already read), the last list before `sigFinished`.
        """
        QObject.__init__(self)
        QRunnable.__init__(self)
        self.setAutoDelete(False)
        self._function = function
        self._args = args
        self._kwargs = kwargs
        self._cancel_event = threading.Event()
        if pass_cancel:
            self._kwargs["cancel"] = self._cancel_event.is_set
        if progress_text is not None:
            self._progress_text = progress_text
            self._progress_sent = -math.inf  # time.monotonic() of the last report
            self._kwargs["progress"] = self._report_progress
        self._batch: list[Any] = []
        self._batch_lock = threading.Lock()
        if batch_keyword is not None:
            self._kwargs[batch_keyword] = self._collect
            timer = self._batch_timer = QTimer(self)  # lives on the GUI thread, like this object
            timer.setInterval(self.BATCH_MS)
            timer.timeout.connect(self._send_batch)
            self.sigStarted.connect(timer.start)  # queued from the pool thread
            self.sigDone.connect(timer.stop)
            self.sigFinished.connect(self._send_batch)  # connected first: the last items before the result
        self.name = getattr(function, "__name__", "work")

    def _collect(self, item: Any) -> None:  # pool thread
        with self._batch_lock:
            self._batch.append(item)

    def _send_batch(self, *_: Any) -> None:  # GUI thread
        with self._batch_lock:
            batch, self._batch = self._batch, []
        if batch:
            self._batch_timer.setInterval(self.LATER_BATCH_MS)
            self.sigYielded.emit(batch)

    def _report_progress(self, done: int, total: int) -> None:
        """The `progress` callback: reports, and is also where a cancel stops a function with no cancel of its own."""
        now = time.monotonic()
        if done in (0, total) or now - self._progress_sent >= self.PROGRESS_MS / 1000:
            self._progress_sent = now
            self.sigProgress.emit(done, total, f"{self._progress_text} {done} of {total}")
        self.check_cancelled()

    def cancel(self) -> None:
        self._cancel_event.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel_event.is_set()

    def check_cancelled(self) -> None:
        if self._cancel_event.is_set():
            raise Cancelled("cancelled")

    def run(self) -> None:  # runs on a pool thread
        self.sigStarted.emit()
        try:
            if self._cancel_event.is_set():
                raise Cancelled("cancelled")
            if inspect.isgeneratorfunction(self._function):
                result = self._run_generator(self._function(*self._args, **self._kwargs))
            else:
                result = self._function(*self._args, **self._kwargs)
            if self._cancel_event.is_set():
                raise Cancelled("cancelled")
        except Cancelled:
            self.sigAborted.emit()
        except Exception as error:  # noqa: BLE001 - every failure must reach the user, not the void
            if self._cancel_event.is_set():
                self.sigAborted.emit()  # cancelled, and the callee stopped in its own way
            else:
                self.sigErrored.emit(error)
        else:
            self.sigFinished.emit(result)
        finally:
            self.sigDone.emit()

    def _run_generator(self, steps: Generator[Progress, None, Any]) -> Any:
        while True:
            try:
                step = next(steps)
            except StopIteration as stop:
                return stop.value
            if isinstance(step, Progress):
                self.sigProgress.emit(step.done, step.total, step.description)
                if step.result is not None:
                    self.sigYielded.emit(step.result)
            if self._cancel_event.is_set():
                steps.close()
                raise Cancelled("cancelled")


class WorkerPool(QObject):
    """Starts workers, keeps them alive while they run, and stops them all on shutdown."""

    sigBusyChanged = Signal(bool)

    def __init__(self, max_threads: int = 3, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._running: set[Worker] = set()
        self._shut_down = False

    def start(self, worker: Worker) -> Worker:
        """Run `worker` on a pool thread; after `shutdown` (the window closed) it is not run: a timer or a
        queued signal that fires then (the model's warm-up after the first paint) starts nothing."""
        if self._shut_down:
            return worker
        self._running.add(worker)
        worker.sigDone.connect(self._forget_sender)  # a bound slot: runs on the GUI thread
        if len(self._running) == 1:
            self.sigBusyChanged.emit(True)
        self._pool.start(worker)
        return worker

    def running(self) -> list[Worker]:
        return list(self._running)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything, wait for the threads and start nothing more; True when all stopped in time."""
        self._shut_down = True
        for worker in list(self._running):
            worker.cancel()
        self._pool.clear()
        stopped = self._pool.waitForDone(timeout_ms)
        self._running.clear()
        return stopped

    def _forget_sender(self) -> None:
        self._running.discard(self.sender())
        if not self._running:
            self.sigBusyChanged.emit(False)
