"""Fine-tuning in a separate process: `pneumoviewer finetune --progress-json`, watched from the GUI thread.

torch holds the GIL while it trains, so the training cannot run on one of the app's threads
without stalling the window; it runs as a child process (`QProcess`, at low priority) reading the
snapshot of reviewed cases the app wrote, and reports JSON lines on its stdout (phase, progress,
the finished summary). The app's own state is never touched by it: a crash, a kill or a cancel
of that process loses nothing but the training, and `sigFailed` says which it was.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QProcess, QTimer, Signal, Slot

_KILL_AFTER_MS = 3000  # a cancelled process that has not stopped by then is killed


def finetune_command(arguments: list[str]) -> list[str]:
    """The command line of `pneumoviewer <arguments>` for this installation (a checkout or a frozen bundle)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *arguments]
    return [sys.executable, "-m", "pneumoviewer", *arguments]


class FinetuneRunner(QObject):
    sigPhase = Signal(str)  # what the process is doing
    sigProgress = Signal(int, int, float)  # seconds done, seconds planned, ETA in seconds
    sigFinished = Signal(dict)  # the process's summary: model, gate, minutes, trained_on, held_out, refused
    sigFailed = Signal(str)  # why it ended without a candidate: cancelled, crashed, killed, an error

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self._buffer = b""
        self._errors: list[str] = []
        self._cancelled = False
        self._summary: dict[str, Any] | None = None
        self._started = 0.0

    @property
    def running(self) -> bool:
        return self.process is not None

    def start(self, snapshot: Path, out: Path, start_model: Path, minutes: float, cache_dir: Path,
              holdout_fraction: float = 0.25, extra_arguments: list[str] | None = None) -> None:
        """Fine-tune on the reviewed cases written to `snapshot`; the candidate goes to `out`/model."""
        if self.process is not None:
            raise RuntimeError("a fine-tuning is already running")
        arguments = ["finetune", "--cases", str(snapshot), "--out", str(out), "--from", str(start_model),
                     "--minutes", f"{minutes:g}", "--holdout-fraction", f"{holdout_fraction:g}",
                     "--cache-dir", str(cache_dir), "--progress-json", "--low-priority", *(extra_arguments or [])]
        program, *rest = finetune_command(arguments)
        process = QProcess(self)
        process.readyReadStandardOutput.connect(self._read_output)
        process.readyReadStandardError.connect(self._read_errors)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self.process, self._buffer, self._errors, self._cancelled, self._summary = process, b"", [], False, None
        self._started = time.monotonic()
        process.start(program, rest)

    @Slot()
    def cancel(self) -> None:
        """Stop the training; the process is killed if it does not stop within a few seconds."""
        process = self.process
        if process is None:
            return
        self._cancelled = True
        process.terminate()
        QTimer.singleShot(_KILL_AFTER_MS, lambda: self._kill_if_running(process))

    def _kill_if_running(self, process: QProcess) -> None:
        if self.process is process:
            process.kill()

    def pid(self) -> int | None:
        return None if self.process is None else int(self.process.processId())

    @Slot()
    def _read_output(self) -> None:
        if self.process is None:
            return
        self._buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # anything else a library prints on stdout
            if event.get("event") == "phase":
                self.sigPhase.emit(str(event.get("text", "")))
            elif event.get("event") == "progress":
                done, total = int(event["done"]), int(event["total"])
                self.sigProgress.emit(done, total, float(max(0, total - done)))
            elif event.get("event") == "finished":
                self._summary = event

    @Slot()
    def _read_errors(self) -> None:
        if self.process is not None:
            text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
            self._errors = (self._errors + [line for line in text.splitlines() if line.strip()])[-20:]

    @Slot(int, QProcess.ExitStatus)
    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_output()
        self._read_errors()
        summary, cancelled = self._summary, self._cancelled
        self.process = None
        if summary is not None and code == 0:
            self.sigFinished.emit(summary)
        elif cancelled:
            self.sigFailed.emit("Fine-tuning was cancelled. Nothing was promoted; your reviews are untouched.")
        elif status == QProcess.ExitStatus.CrashExit:
            self.sigFailed.emit("The fine-tuning process stopped unexpectedly (it crashed or was killed, e.g. "
                                "for lack of memory). Nothing was promoted and your reviews are untouched; "
                                "you can start it again.")
        else:
            reasons = [line.removeprefix("pneumoviewer: ") for line in self._errors
                       if line.startswith("pneumoviewer: ") and "(left out)" not in line]
            reason = reasons[-1] if reasons else (self._errors[-1] if self._errors else "no reason given")
            self.sigFailed.emit(f"Fine-tuning failed: {reason} (exit status {code}). Nothing was promoted; "
                                "your reviews are untouched.")

    @Slot(QProcess.ProcessError)
    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            self.process = None
            self.sigFailed.emit("The fine-tuning process could not be started.")
