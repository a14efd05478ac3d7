"""Annotation files in and out: CSV export (relative or absolute RLE), PNG masks, CSV import, each in a worker.

A part of `MainWindow` (a mixin), kept apart so the window's file stays readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from pneumoviewer.io.rle import RleConvention
from pneumoviewer.review.export import ExportScope, export_csv, export_pngs
from pneumoviewer.ui.dialogs import ExportDialog, ask_rle_convention
from pneumoviewer.ui.workers import Worker


class TransfersMixin:
    """`MainWindow` methods that move annotation files in and out; they use its session, task runner, worklist and status bar."""

    def export_csv(self, path: Path, convention: RleConvention = RleConvention.RELATIVE,
                   scope: ExportScope = ExportScope.REVIEWED) -> None:
        if self.session is not None:
            self._run_task(Worker(export_csv, list(self.session.cases), Path(path), convention, scope,
                                  pass_cancel=True, progress_text="Exporting CSV"))

    def export_pngs(self, folder: Path, scope: ExportScope = ExportScope.REVIEWED) -> None:
        if self.session is not None:
            self._run_task(Worker(export_pngs, list(self.session.cases), Path(folder), scope,
                                  pass_cancel=True, progress_text="Exporting PNG masks"))

    def import_csv(self, path: Path, convention: RleConvention = RleConvention.RELATIVE) -> None:
        if self.session is not None:
            worker = Worker(self.session.import_annotations, Path(path), convention,
                            progress_text="Importing annotations")
            # The import writes masks on its own thread: an edit or an Accept at the same time could
            # interleave with it on the same case, so they wait until it is done (a second or two).
            self.case_view.read_only = True
            worker.sigDone.connect(lambda: setattr(self.case_view, "read_only", False))
            self._run_task(worker)

    def _ask_export(self, is_csv: bool) -> None:
        if self.session is None:
            return
        name = self.session.folder.name or "annotations"
        suggested = Path.home() / (f"{name}-annotations.csv" if is_csv else f"{name}-masks")
        dialog = ExportDialog("Export annotations" if is_csv else "Export PNG masks", suggested, is_csv, self)
        if dialog.exec():
            if is_csv:
                self.export_csv(dialog.path, dialog.rle_convention, dialog.scope)
            else:
                self.export_pngs(dialog.path, dialog.scope)

    def _ask_import(self) -> None:
        if self.session is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import annotations", str(Path.home()), "CSV (*.csv)")
        convention = ask_rle_convention(Path(path), self) if path else None
        if convention is not None:
            self.import_csv(Path(path), convention)

    def _task_done(self, result: Any) -> None:
        summary = getattr(result, "path", None)
        if hasattr(result, "images"):
            self.status.showMessage(f"Exported {result.images} images ({result.positive} with lesions) to {summary}")
        elif hasattr(result, "unknown_ids"):
            self.status.showMessage(
                f"Imported {result.positive} masks and {result.negative} negatives from {summary}"
                + (f"; {len(result.unknown_ids)} ids not in this folder" if result.unknown_ids else "")
            )
        self.sigTaskFinished.emit(result)
