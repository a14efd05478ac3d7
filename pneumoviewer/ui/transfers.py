"""The one background task at a time, and the annotation files in and out that run as such tasks.

`TransferRunner` is a QObject with no widgets that the review controller owns. Opening a study (the
controller's indexing), an import and the exports each run here as a `Worker`; a new task cancels the
one before, so `task` is the one record of what runs. While an import writes masks on its worker,
`importing` is True and `sigReadOnly` says so: edits and statuses wait (one writer per case at a
time). Its signals are emitted on the GUI thread; the controller forwards them to the views under its
own names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal, Slot

from pneumoviewer.ui.workers import Worker, WorkerPool

if TYPE_CHECKING:  # the review stack is imported by the workers, after the window is up (see tasks.py)
    from pneumoviewer.io.rle import RleConvention
    from pneumoviewer.review.case import Case
    from pneumoviewer.review.export import ExportScope
    from pneumoviewer.review.session import ReviewSession


class TransferRunner(QObject):
    sigProgress = Signal(int, int, str)  # done, total, what: the task's progress
    sigMessage = Signal(str, int)  # a passing message, how long in ms (0: until the next)
    sigWarning = Signal(str, str)  # title, text: the task failed
    sigReadOnly = Signal(bool)  # True while an import writes masks: edits wait
    sigTaskFinished = Signal(object)  # the result of the task (an export's, an import's, an opening's)
    sigTaskEnded = Signal()  # the task is over, however it ended: `task` is None again

    def __init__(self, pool: WorkerPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.task: Worker | None = None
        self.importing = False  # an import writes masks on its own thread

    def run(self, worker: Worker) -> None:
        """Start `worker` as the task, cancelling the one before."""
        if self.task is not None:
            self.task.cancel()
        self.task = worker
        worker.sigProgress.connect(self.sigProgress)
        worker.sigFinished.connect(self._task_done)
        worker.sigErrored.connect(self._task_failed)
        worker.sigAborted.connect(self._task_aborted)
        worker.sigDone.connect(self._task_ended)
        self.sigProgress.emit(0, 0, "Working…")
        self.pool.start(worker)

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    # -- annotation files in and out ------------------------------------------------------------------
    def export_csv(self, cases: Sequence[Case], path: Path, convention: RleConvention | None = None,
                   scope: ExportScope | None = None) -> None:
        """Write the cases' masks as a challenge-format CSV (default: relative RLE, reviewed cases)."""
        from pneumoviewer.io.rle import RleConvention
        from pneumoviewer.review.export import ExportScope, export_csv

        self.run(Worker(export_csv, list(cases), Path(path), convention or RleConvention.RELATIVE,
                        scope or ExportScope.REVIEWED, pass_cancel=True, progress_text="Exporting CSV"))

    def export_pngs(self, cases: Sequence[Case], folder: Path, scope: ExportScope | None = None) -> None:
        """One PNG mask per case (default: the reviewed cases)."""
        from pneumoviewer.review.export import ExportScope, export_pngs

        self.run(Worker(export_pngs, list(cases), Path(folder), scope or ExportScope.REVIEWED,
                        pass_cancel=True, progress_text="Exporting PNG masks"))

    def export_dicom(self, cases: Sequence[Case], folder: Path, model_key: str | None,
                     scope: ExportScope | None = None) -> None:
        """A DICOM Segmentation and a burned-in overlay per case into `folder` (default: the reviewed
        cases); accepted AI masks name the model by `model_key`, its fingerprint."""
        from pneumoviewer.review.export import ExportScope, export_dicom

        folder = Path(folder)
        self.run(Worker(export_dicom, list(cases), folder, folder, model_key, scope or ExportScope.REVIEWED,
                        pass_cancel=True, progress_text="Exporting DICOM SEG and overlays"))

    def import_csv(self, session: ReviewSession, path: Path, convention: RleConvention | None = None) -> None:
        """Load a challenge-format CSV as the session's editable masks (default: relative RLE)."""
        from pneumoviewer.io.rle import RleConvention

        worker = Worker(session.import_annotations, Path(path), convention or RleConvention.RELATIVE,
                        progress_text="Importing annotations")
        # The import writes masks on its own thread: an edit or an Accept at the same time could
        # interleave with it on the same case, so they wait until it is done (a second or two).
        self.importing = True
        self.sigReadOnly.emit(True)
        worker.sigDone.connect(self._import_ended)
        self.run(worker)

    @Slot()
    def _import_ended(self) -> None:
        self.importing = False
        self.sigReadOnly.emit(False)

    # -- how the task ended ---------------------------------------------------------------------------
    @Slot(object)
    def _task_done(self, result: Any) -> None:
        summary = getattr(result, "path", None)
        if hasattr(result, "images"):
            self.sigMessage.emit(f"Exported {result.images} images ({result.positive} with lesions) to {summary}", 0)
        elif hasattr(result, "unknown_ids"):
            self.sigMessage.emit(
                f"Imported {result.positive} masks and {result.negative} negatives from {summary}"
                + (f"; {len(result.unknown_ids)} ids not in this folder" if result.unknown_ids else ""), 0
            )
        self.sigTaskFinished.emit(result)

    @Slot(object)
    def _task_failed(self, error: Exception) -> None:
        self.sigWarning.emit("That did not work", str(error))

    @Slot()
    def _task_aborted(self) -> None:
        self.sigMessage.emit("Cancelled", 5000)

    @Slot()
    def _task_ended(self) -> None:
        if self.sender() is self.task:
            self.task = None
        self.sigTaskEnded.emit()
