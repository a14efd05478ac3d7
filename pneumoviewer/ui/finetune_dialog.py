"""Worklist → "Improve the AI from my reviews…" and Worklist → "AI models…": the two dialogs of model versions.

The fine-tuning dialog snapshots the reviewed cases on a worker (`tasks.snapshot_reviewed_cases`),
says what was found, what was refused and why, and what is still missing; it runs the training in a
separate process (`FinetuneRunner`) with a progress bar, an ETA and cancel, and stays open without
blocking the window (the reader keeps reviewing). At the end it shows the gate, the current and the
candidate model side by side on the held-out cases, as the training process computed it. Promote
is offered when the candidate is not worse; "Promote anyway…" otherwise, after a second
confirmation. Promoting keeps the model in the registry (`model.versions`) and uses it at once: the
worklist is scored again. The versions dialog lists the registry, switches and rolls back.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumoviewer.model.versions import ModelRegistry, RegistryError
from pneumoviewer.paths import default_model_path, user_data_dir
from pneumoviewer.ui import tasks
from pneumoviewer.ui.finetune_runner import FinetuneRunner
from pneumoviewer.ui.workers import Worker

if TYPE_CHECKING:
    from pneumoviewer.review.training_set import ReviewedCases
    from pneumoviewer.ui.controller import ReviewController

BUDGET_MINUTES = (2, 5, 10, 20, 30)
DEFAULT_BUDGET_MINUTES = 5


def data_folder(controller: ReviewController) -> Path:
    return Path(controller.data_dir) if controller.data_dir is not None else user_data_dir()


class FinetuneDialog(QDialog):
    def __init__(self, controller: ReviewController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Improve the AI from my reviews")
        self.setModal(False)
        self.controller = controller
        self.registry = ModelRegistry(controller.data_dir)
        self.runner = FinetuneRunner(self)
        self.cases: ReviewedCases | None = None
        self.summary: dict[str, Any] | None = None
        self.job: Path | None = None
        self.promoted: str | None = None
        self.extra_arguments: list[str] = []  # more `pneumoviewer finetune` options (tests: no rehearsal)

        self.found = QLabel("Gathering the reviewed cases…")
        self.found.setWordWrap(True)
        self.refused = QPlainTextEdit()
        self.refused.setReadOnly(True)
        self.refused.setMaximumHeight(90)
        self.refused.hide()
        self.budget = QComboBox()
        for minutes in BUDGET_MINUTES:
            self.budget.addItem(f"{minutes} minutes", minutes)
        self.budget.setCurrentIndex(BUDGET_MINUTES.index(DEFAULT_BUDGET_MINUTES))
        self.start_button = QPushButton("Start fine-tuning")
        self.start_button.setEnabled(False)
        self.cancel_button = QPushButton("Cancel fine-tuning")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["On the held-out cases", "Current model", "Candidate"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.hide()
        self.decision = QLabel("")
        self.decision.setWordWrap(True)
        self.promote_button = QPushButton("Promote the candidate")
        self.promote_anyway_button = QPushButton("Promote anyway…")
        for button in (self.promote_button, self.promote_anyway_button):
            button.hide()
        close = QPushButton("Close")

        form = QFormLayout()
        form.addRow("Training time:", self.budget)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        ending = QHBoxLayout()
        ending.addWidget(self.promote_button)
        ending.addWidget(self.promote_anyway_button)
        ending.addStretch(1)
        ending.addWidget(close)
        layout = QVBoxLayout(self)
        widgets: tuple[QWidget, ...] = (self.found, self.refused)
        for widget in widgets:
            layout.addWidget(widget)
        layout.addLayout(form)
        layout.addLayout(buttons)
        widgets = (self.progress, self.state, self.table, self.decision)
        for widget in widgets:
            layout.addWidget(widget)
        layout.addLayout(ending)

        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.promote_button.clicked.connect(lambda: self.promote(forced=False))
        self.promote_anyway_button.clicked.connect(self._promote_anyway)
        close.clicked.connect(self.close)
        self.runner.sigPhase.connect(self._phase)
        self.runner.sigProgress.connect(self._progress)
        self.runner.sigFinished.connect(self._finished)
        self.runner.sigFailed.connect(self._failed)
        self.resize(620, 560)

    # -- gathering ----------------------------------------------------------------------------------
    def gather(self) -> None:
        """Snapshot the session's reviewed cases (on a worker) and say whether they are enough."""
        session = self.controller.session
        if session is None:
            self.found.setText("Open a folder and review cases first.")
            return
        if self.runner.running:
            return
        self.job = data_folder(self.controller) / "finetune" / datetime.now().strftime("%Y%m%d-%H%M%S")
        worker = Worker(tasks.snapshot_reviewed_cases, list(session.cases), self.job / "cases.json")
        worker.sigFinished.connect(self._gathered)
        worker.sigErrored.connect(lambda error: self.found.setText(f"The reviewed cases cannot be gathered: {error}"))
        self.controller.pool.start(worker)

    def _gathered(self, cases: ReviewedCases) -> None:
        self.cases = cases
        missing = cases.missing()
        text = (f"{len(cases.cases)} reviewed cases can teach the AI, {cases.positives} of them with a "
                f"pneumothorax. A quarter of them is held out to compare the current and the new model.")
        if cases.refused:
            count = "1 reviewed case is" if len(cases.refused) == 1 else f"{len(cases.refused)} reviewed cases are"
            text += f" {count} left out because their labels contradict themselves:"
            self.refused.setPlainText("\n".join(str(refusal) for refusal in cases.refused))
            self.refused.show()
        self.found.setText(text + (f"\n{missing}" if missing else ""))
        self.start_button.setEnabled(missing is None)
        self.start_button.setToolTip(missing or "")

    # -- training ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.cases is None or self.job is None or self.cases.missing() is not None or self.runner.running:
            return
        start_model = self.controller.model_checkpoint or default_model_path()
        previous = None if self.summary is None else Path(self.summary["model"]).parent
        if previous is not None and previous != self.job:  # a candidate not promoted, no longer reachable
            self._remove_job_folder(previous)
        self.summary = None
        self.table.hide()
        self.decision.setText("")
        for button in (self.promote_button, self.promote_anyway_button):
            button.hide()
        self.runner.start(self.job / "cases.json", self.job, Path(start_model), float(self.budget.currentData()),
                          data_folder(self.controller) / "finetune" / "cache", extra_arguments=self.extra_arguments)
        self.start_button.setEnabled(False)
        self.budget.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.state.setText("Starting the fine-tuning process… You can keep reviewing meanwhile.")

    def _phase(self, text: str) -> None:
        self.phase_text = text
        self.state.setText(text[:1].upper() + text[1:] + "…")

    def _progress(self, done: int, total: int, eta_s: float) -> None:
        self.progress.setValue(int(100 * done / max(1, total)))
        minutes, seconds = divmod(int(eta_s), 60)
        phase = getattr(self, "phase_text", "working")
        self.state.setText(f"{phase[:1].upper() + phase[1:]}… about {minutes} min {seconds:02d} s left")

    def _training_ended(self) -> None:
        self.cancel_button.setEnabled(False)
        self.budget.setEnabled(True)
        self.start_button.setEnabled(self.cases is not None and self.cases.missing() is None)

    def _failed(self, reason: str) -> None:
        self._training_ended()
        self.state.setText(reason)
        self.state.setStyleSheet("color: #f85149")
        self.controller.sigMessage.emit(reason, 15000)

    def _finished(self, summary: dict[str, Any]) -> None:
        self._training_ended()
        self.summary = summary
        self.progress.setValue(100)
        self.state.setStyleSheet("")
        self.state.setText(f"Trained on {summary['trained_on']} cases for {summary['minutes']:.1f} min; "
                           f"{summary['held_out']} held out.")
        rows = [list(row) for row in summary["table_rows"]]
        if summary.get("forgetting_rows"):
            rows.append(["On the developers' SIIM validation images:", "", ""])
            rows += [[f"   {label}", current, candidate] for label, current, candidate in summary["forgetting_rows"]]
        self.table.setRowCount(len(rows))
        for number, row in enumerate(rows):
            for column, value in enumerate(row):
                item = QTableWidgetItem(str(value))
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(number, column, item)
        self.table.resizeColumnsToContents()
        self.table.show()
        gate = summary["gate"]
        text = f"The candidate is <b>{gate['decision']}</b> than the current model ({'; '.join(gate['reasons'])})."
        if gate.get("warning"):
            text += f"<br><span style='color:#d29922'>{gate['warning']}</span>"
        self.decision.setText(text)
        worse = gate["decision"] == "worse"
        self.promote_button.setVisible(not worse)
        self.promote_anyway_button.setVisible(worse)

    # -- promotion --------------------------------------------------------------------------------------
    def _promote_anyway(self) -> None:
        answer = QMessageBox.question(
            self, "Promote a model that did worse?",
            "On your held-out cases the candidate did worse than the model in use. Promote it anyway?\n"
            "You can roll back in Worklist → AI models…",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.promote(forced=True)

    def promote(self, forced: bool) -> None:
        if self.summary is None:
            return
        try:
            version = self.registry.promote(Path(self.summary["model"]), forced=forced)
        except RegistryError as error:
            self.controller.warn("Model not promoted", str(error))
            return
        self.promoted = version.name
        self._remove_job_folder(Path(self.summary["model"]).parent)  # the registry keeps its own copy
        for button in (self.promote_button, self.promote_anyway_button):
            button.hide()
        self.decision.setText(self.decision.text() + f"<br>Promoted as <b>{version.name}</b>: the worklist is "
                              "being scored again with it.")
        self.controller.use_model(version.weights)

    def _remove_job_folder(self, job: Path) -> None:
        """A finished job's scratch (the snapshot of cases, the candidate, ~7 MB): only a folder of this data
        folder's fine-tuning jobs, never the shared image cache, a running job or a model version."""
        jobs = data_folder(self.controller) / "finetune"
        if job.parent == jobs and job.name != "cache" and not self.runner.running and job.is_dir():
            shutil.rmtree(job, ignore_errors=True)

    def closeEvent(self, event: Any) -> None:
        if self.runner.running:
            self.state.setText(self.state.text() + " (still training: reopen this dialog to follow it)")
        super().closeEvent(event)


class ModelVersionsDialog(QDialog):
    """The bundled model and every promoted one: which is in use, where it came from, how it did at its gate."""

    def __init__(self, controller: ReviewController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("AI models")
        self.controller = controller
        self.registry = ModelRegistry(controller.data_dir)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Model", "In use", "Made from", "Trained on", "Gate"])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.use_button = QPushButton("Use the selected model")
        self.roll_back_button = QPushButton("Roll back")
        close = QPushButton("Close")
        buttons = QHBoxLayout()
        for button in (self.use_button, self.roll_back_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Models promoted from your reviews are kept here; the bundled model is never changed."))
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.use_button.clicked.connect(self._use_selected)
        self.roll_back_button.clicked.connect(self._roll_back)
        close.clicked.connect(self.accept)
        self.refresh()
        self.resize(720, 360)

    def refresh(self) -> None:
        versions = self.registry.versions()
        active = self.registry.active().name
        self.names = [version.name for version in versions]
        self.table.setRowCount(len(versions))
        for row, version in enumerate(versions):
            parent = version.parent or {}
            gate = version.gate or {}
            trained = (version.card.get("training") or {}).get("trained_on_ids")
            cells = [version.label, "✓" if version.name == active else "",
                     "" if version.bundled else str(parent.get("name", "")),
                     "" if trained is None else f"{len(trained)} reviewed cases",
                     str(gate.get("decision", "")) if gate else ""]
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.roll_back_button.setEnabled(active != "bundled" or len(versions) > 1)

    def _use_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.use(self.names[rows[0].row()])

    def use(self, name: str) -> None:
        try:
            version = self.registry.switch(name)
        except RegistryError as error:
            self.controller.warn("Model not switched", str(error))
            return
        self.controller.use_model(version.weights)
        self.refresh()

    def _roll_back(self) -> None:
        try:
            version = self.registry.roll_back()
        except RegistryError as error:
            self.controller.warn("Model not switched", str(error))
            return
        self.controller.use_model(version.weights)
        self.refresh()
