"""Review → Save case report… and Save worklist report…: the pages are made on a worker.

The reports say what the window shows: the case's status and masks, the loaded model's results,
card and fingerprint (`model_queue.model_key`). Painting a page needs no window (`printing`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from pneumoviewer.ui.workers import Worker

if TYPE_CHECKING:
    from pneumoviewer.review.case import Case
    from pneumoviewer.ui.controller import ReviewController


def report_format(path: Path) -> str:
    """The page format a chosen file name asks for: .png gives PNG pages, anything else a PDF."""
    return "png" if Path(path).suffix.lower() == ".png" else "pdf"


class ReportActions(QObject):
    sigSaved = Signal(list)  # the files written

    def __init__(self, controller: ReviewController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller

    def _model(self):
        from pneumoviewer.printing.reports import ReportModel

        queue = self.controller.model_queue
        return ReportModel(queue.model_card, queue.model_key)

    def _ai_problems(self, cases: list[Case]) -> dict[str, str]:
        problem = self.controller.findings.model_problem
        return {case.image_id: problem for case in cases if problem and case.ai_score is None}

    def save_case_report(self, path: Path) -> None:
        """The case on screen, one page."""
        from pneumoviewer.printing.reports import save_case_reports

        c = self.controller
        if c.session is None or c.current_id is None:
            return
        cases = [c.session.case(c.current_id)]
        self._run(Worker(save_case_reports, cases, Path(path), report_format(path), self._model(),
                         self._ai_problems(cases), pass_cancel=True, progress_text="Case report"))

    def save_worklist_report(self, path: Path) -> None:
        """Every case of the worklist in triage order, with thumbnails."""
        from pneumoviewer.printing.reports import save_worklist_report

        c = self.controller
        if c.session is None:
            return
        cases = list(c.session.worklist())
        title = Path(c.session.folder).name or str(c.session.folder)
        self._run(Worker(save_worklist_report, cases, Path(path), report_format(path), self._model(), title,
                         pass_cancel=True, progress_text="Worklist report"))

    def _run(self, worker: Worker) -> None:
        worker.sigFinished.connect(self._saved)
        self.controller.transfers.run(worker)

    def _saved(self, written: list[Path]) -> None:
        names = ", ".join(path.name for path in written)
        self.controller.sigMessage.emit(f"Report saved: {names} in {written[0].parent}" if written else "", 0)
        self.sigSaved.emit(written)
