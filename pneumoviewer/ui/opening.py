"""Opening studies: folders, files, drops and recent folders, indexed in a worker while the worklist fills in.

A part of `MainWindow` (a mixin), kept apart so the window's file stays readable.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog

from pneumoviewer.io.dicom import DicomMetadata
from pneumoviewer.review.case import Case
from pneumoviewer.ui import layout
from pneumoviewer.ui.dialogs import recent_folders, remember_folder
from pneumoviewer.ui.tasks import index_files, index_folder
from pneumoviewer.ui.workers import Worker


class OpeningMixin:
    """`MainWindow` methods that open studies; they use its session, task runner, worklist and status bar."""

    def open_paths(self, paths: list[Path]) -> None:
        """A single folder opens as a folder session; anything else as a selection of files."""
        paths = [Path(path).expanduser() for path in paths]
        missing = [path for path in paths if not path.exists()]
        if missing:
            self._warn("Cannot open", "\n".join(f"{path}: no such file or folder" for path in missing))
            paths = [path for path in paths if path.exists()]
        if len(paths) == 1 and paths[0].is_dir():
            self.open_folder(paths[0])
        elif paths:
            self._start_indexing(Worker(index_files, paths, self.data_dir, progress_text="Reading headers",
                                        batch_keyword="found"))

    def open_folder(self, folder: Path) -> None:
        remember_folder(folder)
        layout.refresh_recent_menu(self, recent_folders())
        self._start_indexing(Worker(index_folder, Path(folder), self.data_dir, progress_text="Indexing headers",
                                    batch_keyword="found"))

    def _start_indexing(self, worker: Worker) -> None:
        self._close_session()
        self.case_view.show_note("Reading the study headers…")
        worker.sigYielded.connect(self._headers_found)
        worker.sigFinished.connect(self._session_opened)
        worker.sigErrored.connect(self._indexing_stopped)
        worker.sigAborted.connect(self._indexing_stopped)
        self._run_task(worker)

    def _headers_found(self, headers: list[DicomMetadata]) -> None:
        """List studies as their headers are read, so a folder of thousands shows at once and fills in.

        These rows are provisional (no AI, no restored status yet): the session replaces them when the
        whole folder is indexed, with the same case numbers unless files are out of path order.
        """
        if self.sender() is not self._task or self.session is not None:
            return  # a batch from an indexing that was cancelled meanwhile
        first = self.worklist_model.rowCount() + 1
        cases = [Case.from_metadata(meta, f"Case {number:04d}") for number, meta in enumerate(headers, first)]
        self.worklist_model.append_rows([self.findings.row(case, None) for case in cases])

    def _indexing_stopped(self) -> None:
        if self.session is None:  # cancelled or failed: no half list without a session behind it
            self.worklist_model.set_rows([])
            self.case_view.show_case(None)

    def _ask_folder(self) -> None:
        recent = recent_folders()
        folder = QFileDialog.getExistingDirectory(self, "Open folder of DICOMs", str(recent[0] if recent else Path.home()))
        if folder:
            self.open_folder(Path(folder))

    def _ask_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open DICOM files", str(Path.home()), "DICOM (*.dcm);;All files (*)")
        if files:
            self.open_paths([Path(file) for file in files])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)
