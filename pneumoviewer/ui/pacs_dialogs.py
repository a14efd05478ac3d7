"""File → Open from PACS… and Review → Send results to PACS…: thin dialogs over `pneumoviewer.pacs`.

Queries, retrievals and pushes run as workers (ui/workers.py) on the dialog's own pool, never on the
GUI thread; a retrieval can be cancelled (what it fetched is kept and resumed next time). The node
list is the per-user `pacs-nodes.json` (`pacs.nodes`), edited in `NodeDialog`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumoviewer.pacs.nodes import DEFAULT_CALLING_AE, PacsNode, load_nodes, save_nodes
from pneumoviewer.pacs.studies import StudyQuery, StudyRecord
from pneumoviewer.ui.workers import Worker, WorkerPool

STUDY_COLUMNS = ("Date", "Patient ID", "Patient's name", "Accession", "Modality", "Images", "Description")
OBJECT_COLUMNS = ("Case", "Object", "Status")
KIND_NAMES = {"seg": "DICOM SEG (mask)", "overlay": "Overlay (burned-in picture)"}


class NodeDialog(QDialog):
    """Add or change a PACS node: DICOMweb URL, or DIMSE AE title / host / port; optional login."""

    def __init__(self, node: PacsNode | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS node")
        self.name = QLineEdit(node.name if node else "")
        self.kind = QComboBox()
        self.kind.addItem("DICOMweb (QIDO / WADO / STOW)", "dicomweb")
        self.kind.addItem("DIMSE (C-FIND / C-GET / C-STORE)", "dimse")
        self.kind.setCurrentIndex(1 if node and node.kind == "dimse" else 0)
        self.url = QLineEdit(node.url if node else "")
        self.url.setPlaceholderText("http://pacs.hospital:8042/dicom-web")
        self.ae_title = QLineEdit(node.ae_title if node else "")
        self.host = QLineEdit(node.host if node else "")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(node.port if node and node.port else 104)
        self.calling_ae = QLineEdit(node.calling_ae if node else DEFAULT_CALLING_AE)
        self.username = QLineEdit(node.username if node else "")
        self.password = QLineEdit(node.password if node else "")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, 600)
        self.timeout.setValue(node.timeout_s if node else 30)
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        form = QFormLayout()
        for label, widget in (("Name:", self.name), ("Protocol:", self.kind), ("DICOMweb URL:", self.url),
                              ("Its AE title:", self.ae_title), ("Host:", self.host), ("Port:", self.port),
                              ("Our AE title:", self.calling_ae), ("User:", self.username),
                              ("Password:", self.password), ("Timeout (s):", self.timeout)):
            form.addRow(label, widget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._check_and_accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)
        self.node: PacsNode | None = None

    def _check_and_accept(self) -> None:
        try:
            self.node = PacsNode(self.name.text().strip(), self.kind.currentData(), url=self.url.text().strip(),
                                 ae_title=self.ae_title.text().strip(), host=self.host.text().strip(),
                                 port=self.port.value(), calling_ae=self.calling_ae.text().strip() or
                                 DEFAULT_CALLING_AE, username=self.username.text().strip(),
                                 password=self.password.text(), timeout_s=self.timeout.value())
        except ValueError as error:
            self.problem.setText(str(error))
            return
        self.accept()


class _PacsDialog(QDialog):
    """What both dialogs share: the node picker, a progress bar, a message line, a worker pool."""

    def __init__(self, title: str, data_dir: Path | None, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.data_dir = data_dir
        self.pool = WorkerPool(1, self)
        self.worker: Worker | None = None
        self.nodes = QComboBox()
        self.edit_node = QPushButton("Add or edit node…")
        self.edit_node.clicked.connect(self._edit_node)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.node_row = QHBoxLayout()
        self.node_row.addWidget(QLabel("PACS:"))
        self.node_row.addWidget(self.nodes, 1)
        self.node_row.addWidget(self.edit_node)
        self._load_nodes()

    def _load_nodes(self, select: str | None = None) -> None:
        self.nodes.clear()
        try:
            nodes = load_nodes(self.data_dir)
        except Exception as error:  # noqa: BLE001 - a damaged settings file is shown, not fatal
            self.message.setText(str(error))
            nodes = []
        for node in nodes:
            self.nodes.addItem(node.describe(), node)
        if select is not None:
            self.nodes.setCurrentIndex(max(0, [node.name for node in nodes].index(select)))
        if not nodes:
            self.message.setText("No PACS is configured yet: add one with “Add or edit node…”.")

    @property
    def node(self) -> PacsNode | None:
        return self.nodes.currentData()

    def _edit_node(self) -> None:
        dialog = NodeDialog(self.node, self)
        if dialog.exec() and dialog.node is not None:
            nodes = [node for node in load_nodes(self.data_dir) if node.name != dialog.node.name]
            save_nodes([*nodes, dialog.node], self.data_dir)
            self._load_nodes(select=dialog.node.name)
            self.message.clear()

    def _run(self, worker: Worker, busy: str) -> Worker:
        self.worker = worker
        self.message.setText(busy)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        worker.sigProgress.connect(self._show_progress)
        worker.sigErrored.connect(lambda error: self.message.setText(str(error)))
        worker.sigDone.connect(self._ended)
        self._set_busy(True)
        return self.pool.start(worker)

    def _show_progress(self, done: int, total: int, _text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _ended(self) -> None:
        self.worker = None
        self.progress.setVisible(False)
        self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self.nodes.setEnabled(not busy)
        self.edit_node.setEnabled(not busy)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.pool.shutdown()
        super().closeEvent(event)

    def done(self, result: int) -> None:
        self.pool.shutdown()
        super().done(result)


class OpenFromPacsDialog(_PacsDialog):
    """Query a PACS, pick studies, retrieve them into the cache; `sigRetrieved` names their folders."""

    sigRetrieved = Signal(list)  # [Path]: the studies retrieved in full

    def __init__(self, cache: Path, data_dir: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Open from PACS", data_dir, parent)
        self.cache = cache
        self.date_from, self.date_to = QLineEdit(), QLineEdit()
        for edit in (self.date_from, self.date_to):
            edit.setPlaceholderText("YYYYMMDD")
        self.modality_cr, self.modality_dx = QCheckBox("CR"), QCheckBox("DX")
        self.modality_cr.setChecked(True)
        self.modality_dx.setChecked(True)
        self.patient_id, self.patient_name, self.accession = QLineEdit(), QLineEdit(), QLineEdit()
        self.patient_name.setPlaceholderText("DOE^J*  (* matches anything)")
        self.search = QPushButton("Search")
        self.search.setDefault(True)
        self.search.clicked.connect(self.run_query)
        self.results = QTableWidget(0, len(STUDY_COLUMNS))
        self.results.setHorizontalHeaderLabels(STUDY_COLUMNS)
        self.results.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.results.horizontalHeader().setStretchLastSection(True)
        self.results.itemSelectionChanged.connect(lambda: self._set_busy(self.worker is not None))
        self.retrieve = QPushButton("Retrieve and open")
        self.retrieve.clicked.connect(self.run_retrieve)
        self.cancel = QPushButton("Cancel retrieval")
        self.cancel.clicked.connect(lambda: self.worker.cancel() if self.worker is not None else None)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        self.studies: list[StudyRecord] = []

        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        modalities = QHBoxLayout()
        modalities.addWidget(self.modality_cr)
        modalities.addWidget(self.modality_dx)
        modalities.addStretch(1)
        form = QFormLayout()
        form.addRow("Study date:", dates)
        form.addRow("Modality:", modalities)
        form.addRow("Patient ID:", self.patient_id)
        form.addRow("Patient's name:", self.patient_name)
        form.addRow("Accession:", self.accession)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.retrieve)
        buttons.addWidget(self.cancel)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(self.node_row)
        layout.addLayout(form)
        layout.addWidget(self.search, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.resize(820, 560)
        self._set_busy(False)

    def query(self) -> StudyQuery:
        modalities = tuple(box.text() for box in (self.modality_cr, self.modality_dx) if box.isChecked())
        return StudyQuery(self.date_from.text().strip(), self.date_to.text().strip(), modalities,
                          self.patient_id.text().strip(), self.patient_name.text().strip(),
                          self.accession.text().strip())

    def run_query(self) -> None:
        from pneumoviewer.pacs.connection import query_studies

        node = self.node
        if node is None:
            return
        try:
            query = self.query()
        except ValueError as error:
            self.message.setText(str(error))
            return
        worker = Worker(query_studies, node, query)
        worker.sigFinished.connect(self._show_studies)
        self._run(worker, f"Searching {node.name}…")

    def _show_studies(self, studies: list[StudyRecord]) -> None:
        self.studies = studies
        self.results.setRowCount(len(studies))
        for row, study in enumerate(studies):
            values = (_date(study.study_date), study.patient_id, study.patient_name.replace("^", " "),
                      study.accession_number, "/".join(study.modalities),
                      "" if study.instances is None else str(study.instances), study.description)
            for column, value in enumerate(values):
                self.results.setItem(row, column, QTableWidgetItem(value))
        self.message.setText(f"{len(studies)} studies found." if studies else "No study matches.")

    def selected_studies(self) -> list[StudyRecord]:
        rows = sorted({index.row() for index in self.results.selectionModel().selectedRows()})
        return [self.studies[row] for row in rows]

    def run_retrieve(self) -> None:
        from pneumoviewer.pacs.retrieve import retrieve_studies

        node, chosen = self.node, self.selected_studies()
        if node is None or not chosen:
            return
        worker = Worker(retrieve_studies, node, [study.study_uid for study in chosen], self.cache,
                        pass_cancel=True, progress_text="Retrieving image")
        worker.sigFinished.connect(self._retrieved)
        worker.sigAborted.connect(lambda: self.message.setText(
            "Retrieval cancelled. Nothing half-retrieved is opened; retrieving again resumes where it stopped."))
        self._run(worker, f"Retrieving {len(chosen)} studies from {node.name}…")

    def _retrieved(self, studies: list[Any]) -> None:
        folders = [study.folder for study in studies if study.instances]
        self.message.setText(f"Retrieved {len(folders)} studies.")
        self.sigRetrieved.emit(folders)
        self.accept()

    def _set_busy(self, busy: bool) -> None:
        super()._set_busy(busy)
        self.search.setEnabled(not busy)
        self.retrieve.setEnabled(not busy and bool(self.results.selectionModel().selectedRows()))
        self.cancel.setEnabled(busy)


class SendToPacsDialog(_PacsDialog):
    """Write the reviewed cases' SEGs and overlays (once per read) and push them; a status per object."""

    def __init__(self, cases: Sequence[Any], outbox: Path, model_version: str | None,
                 data_dir: Path | None = None, parent: QWidget | None = None, current: Any = None) -> None:
        """`current`: the case on screen, which the reader may send alone."""
        super().__init__("Send results to PACS", data_dir, parent)
        self.cases, self.outbox, self.model_version = list(cases), outbox, model_version
        self.current = current
        self.only_current = QCheckBox(f"Only {current.display_id}, the case on screen" if current is not None
                                      else "Only the case on screen")
        self.only_current.setEnabled(current is not None and current.status.is_done)
        self.table = QTableWidget(0, len(OBJECT_COLUMNS))
        self.table.setHorizontalHeaderLabels(OBJECT_COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        reviewed = sum(case.status.is_done for case in self.cases)
        self.send = QPushButton("Send")
        self.send.setDefault(True)
        self.send.clicked.connect(self.run_send)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.send)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(self.node_row)
        layout.addWidget(QLabel(f"{reviewed} reviewed cases: a DICOM SEG and a burned-in overlay each. Objects "
                                "sent before are not sent again; failed ones are retried."))
        layout.addWidget(self.only_current)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.resize(720, 460)
        self._set_busy(False)
        self.send.setEnabled(reviewed > 0 and self.node is not None)

    def run_send(self) -> None:
        from pneumoviewer.pacs.outbox import send_results

        node = self.node
        if node is None:
            return
        cases = [self.current] if self.only_current.isChecked() else self.cases
        worker = Worker(send_results, node, cases, self.outbox, self.model_version, self.data_dir,
                        pass_cancel=True, progress_text="Sending object")
        worker.sigFinished.connect(self._sent)
        self._run(worker, f"Sending to {node.name}…")

    def _sent(self, result: tuple[list[Any], Any]) -> None:
        objects, report = result
        by_path = {item.path: item for item in report.results}
        self.table.setRowCount(len(objects))
        for row, item in enumerate(objects):
            outcome = by_path.get(item.path)
            status = "not tried" if outcome is None else outcome.status.value
            if outcome is not None and outcome.reason:
                status += f": {outcome.reason}"
            for column, value in enumerate((item.display_id, KIND_NAMES[item.kind], status)):
                self.table.setItem(row, column, QTableWidgetItem(value))
        failed = len(report.failed)
        sent = len(report.results) - failed
        stopped = f" {report.stopped_by}." if report.stopped_by is not None else ""
        self.message.setText(f"{sent} objects on the PACS, none failed." if not failed else
                             f"{sent} objects on the PACS; {failed} failed.{stopped} Press Retry to send them again.")
        self.send.setText("Retry" if failed else "Send")

    def _set_busy(self, busy: bool) -> None:
        super()._set_busy(busy)
        self.send.setEnabled(not busy and self.node is not None)


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:]}" if len(value) == 8 and value.isdigit() else value
