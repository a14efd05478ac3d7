"""The main window: worklist on the left, the case in the middle, tools and findings on the right.

It wires named actions to the review session and the AI queue; every slow call runs in a worker.
Opening studies lives in `opening.py`, annotation import/export in `transfers.py` (mixins of this class).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, QTimer, Signal
from PySide6.QtGui import QActionGroup, QCloseEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from pneumoviewer.paths import demo_dir
from pneumoviewer.review.case import Case, CaseChange, ReviewStatus
from pneumoviewer.review.session import ReviewSession
from pneumoviewer.ui import layout
from pneumoviewer.ui.actions import build_actions
from pneumoviewer.ui.case_view import CaseView
from pneumoviewer.ui.dialogs import ModelCardDialog, ShortcutsDialog
from pneumoviewer.ui.findings import Findings, case_fields, counter_text
from pneumoviewer.ui.info_panel import InfoPanel
from pneumoviewer.ui.model_queue import (
    AiFinding,
    JobKind,
    ModelJob,
    ModelQueue,
    default_predictor,
)
from pneumoviewer.ui.opening import OpeningMixin
from pneumoviewer.ui.status_bar import StatusBar
from pneumoviewer.ui.tasks import LoadedImage, OpenedStudies, load_image
from pneumoviewer.ui.tools import MODE_ACTIONS, ToolPanel
from pneumoviewer.ui.transfers import TransfersMixin
from pneumoviewer.ui.workers import Worker, WorkerPool
from pneumoviewer.ui.worklist import (
    WorklistFilter,
    WorklistModel,
    WorklistTable,
)

_IMAGE_CACHE = 6
_ROW_REFRESH_BUDGET_S = 0.008  # worklist rows refreshed per event-loop turn after a bulk change
_HEATMAP_CACHE = 12


class MainWindow(OpeningMixin, TransfersMixin, QMainWindow):
    sigSessionOpened = Signal()
    sigCaseShown = Signal(str)  # image_id, once its pixels are on the canvas
    sigTaskFinished = Signal(object)  # the result of an export / import
    sigSessionCaseChanged = Signal(object, object)  # Case, CaseChange (queued from any thread)

    def __init__(self, predictor_factory: Callable[[], Any] = default_predictor, data_dir: Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle("PneumoViewer")
        self.data_dir = data_dir  # where sessions autosave (None = the per-user data folder)
        self.pool = WorkerPool(max_threads=4, parent=self)
        self.actions = build_actions(self)
        self.case_view = CaseView()
        self.canvas = self.case_view.canvas
        self.tools = ToolPanel(self.actions, self)
        self.info = InfoPanel()
        self.worklist_model = WorklistModel(self)
        self.worklist_filter = WorklistFilter(self)
        self.worklist_filter.setSourceModel(self.worklist_model)
        self.worklist = WorklistTable(self.worklist_filter)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.model_queue = ModelQueue(self.pool, predictor_factory, self)
        self.session: ReviewSession | None = None
        self.current_id: str | None = None
        self._images: OrderedDict[str, Any] = OrderedDict()
        self._heatmaps: OrderedDict[str, np.ndarray] = OrderedDict()
        self.findings = Findings()
        self._stale_rows: dict[str, Case] = {}  # rows to refresh, oldest change first
        # Until the reader acts, the case on screen follows the top of the worklist as scores arrive
        # (likeliest pneumothorax first); any key, click or wheel on the film or the list stops that.
        self._follow_top = False
        self._selecting = False  # a selection made by the window, not by a click
        self._row_timer = QTimer(self)
        self._row_timer.setSingleShot(True)
        self._row_timer.setInterval(0)
        self._row_timer.timeout.connect(self._refresh_stale_rows)
        self._loader: Worker | None = None
        self._refused_models: list[Exception] = []  # a chosen model that could not be used (see use_model)
        self._task: Worker | None = None
        self.layout_restored = False  # True once the user's saved dock layout (or the default) is applied
        self.panels = layout.build(self)
        self._connect()
        self.setAcceptDrops(True)  # drop a folder or DICOM files on the window to open them
        layout.restore_preferences(self)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self.layout_restored:
            self.layout_restored = True
            layout.fit_docks(self)
        # Importing torch holds the GIL for a moment: better at start-up than mid-review.
        self.model_queue.warm_up()

    def _session_opened(self, opened: OpenedStudies) -> None:
        self.session = session = opened.session
        session.case_changed.connect(self.sigSessionCaseChanged.emit)
        session.save_failed.connect(lambda error: self.status.showMessage(f"Autosave failed: {error}"))
        self.setWindowTitle(f"PneumoViewer — {opened.title}")
        error = None if self.model_queue.model_error is None else f"AI unavailable: {self.model_queue.model_error}"
        chosen = self._selected_image_id()  # a provisional row the reader already clicked
        self.worklist_model.set_rows([self.findings.row(case, error) for case in session.cases])
        duplicates = [f"{case.path}: the same image as {session.case(case.image_id).path} (shown once)"
                      for case in session.duplicates]
        layout.show_unreadable(self, [str(error) for error in opened.unreadable] + duplicates)
        if session.restore_problems:
            self._warn("Autosave partly unreadable", "\n".join(map(str, session.restore_problems)))
        self._update_counter()
        restored = session.done_count
        self.status.showMessage(
            f"{len(session)} images" + (f", {restored} reviewed cases restored" if restored else ""), 8000
        )
        self.predict_all()
        self._select_proxy_row(max(self.worklist_filter.proxy_row_of(chosen) if chosen else 0, 0))
        self._follow_top = chosen is None
        self.sigSessionOpened.emit()

    def _close_session(self) -> None:
        self.model_queue.cancel()
        if self._task is not None:
            self._task.cancel()
        self.case_view.show_case(None)
        self.current_id = None
        if self.session is not None:
            self.session.case_changed.disconnect(self.sigSessionCaseChanged.emit)
            try:
                self.session.close()
            except OSError as error:
                self._warn("Autosave failed", str(error))
        self.session = None
        self._follow_top = False
        self._images.clear()
        self._heatmaps.clear()
        self._stale_rows.clear()
        self.findings.clear()
        self.worklist_model.set_rows([])
        self.info.clear()

    def use_model(self, checkpoint: Path) -> None:
        """Predict with `checkpoint` from now on: every case again (edits, statuses and undo stay)."""
        from pneumoviewer.model.inference import Predictor

        refused: list[Exception] = []  # filled on the AI thread when `checkpoint` cannot be used

        def chosen_or_bundled() -> Predictor:
            predictor, problem = Predictor.chosen_or_default(checkpoint)
            if problem is not None:
                refused.append(problem)
            return predictor

        self._refused_models = refused
        self.model_queue.use_model(chosen_or_bundled)
        self._heatmaps.clear()
        self.case_view.show_heatmap(self.current_id, None)
        for row in self.worklist_model.rows():
            self.worklist_model.update_row(row.image_id, error=None)
        self.status.show_ai_state(f"AI: loading {Path(checkpoint).name}…")
        self.model_queue.warm_up()
        self.predict_all()
        if self.current_id is not None:  # the case on screen first
            case = self.session.case(self.current_id)
            heatmap = [self._job(JobKind.HEATMAP, case)] if self.actions["toggle_heatmap"].isChecked() else []
            self.model_queue.prioritise([self._job(JobKind.PREDICT, case), *heatmap])

    def predict_all(self) -> None:
        """Queue the AI for every case in worklist order (again after a model change: edits stay)."""
        if self.session is None:
            return
        self.model_queue.enqueue(
            [self._job(JobKind.PREDICT, case) for case in self.session.worklist()]
        )

    # -- the current case -----------------------------------------------------------------------
    def show_case(self, image_id: str) -> None:
        if self.session is None or image_id == self.current_id:
            return
        case = self.session.case(image_id)
        self.current_id = image_id
        self.case_view.show_case(case)
        self._update_info(case)
        jobs = [] if case.has_ai_result else [self._job(JobKind.PREDICT, case)]
        if self.actions["toggle_heatmap"].isChecked() and image_id not in self._heatmaps:
            jobs.append(self._job(JobKind.HEATMAP, case))
        if jobs:
            self.model_queue.prioritise(jobs)
        cached = self._images.get(image_id)
        if cached is not None:
            self._image_loaded(LoadedImage(image_id, cached))
            return
        if self._loader is not None:
            self._loader.cancel()
        self.status.showMessage(f"Loading {case.display_id}…")
        self._loader = worker = Worker(load_image, image_id, case.path)
        worker.sigFinished.connect(self._image_loaded)
        worker.sigErrored.connect(self._image_failed)
        self.pool.start(worker)

    def _image_loaded(self, loaded: LoadedImage) -> None:
        self._images[loaded.image_id] = loaded.image
        self._images.move_to_end(loaded.image_id)
        while len(self._images) > _IMAGE_CACHE:
            self._images.popitem(last=False)
        if loaded.image_id != self.current_id:
            return
        image = loaded.image
        self.case_view.show_pixels(loaded.image_id, image.raw, image.window, image.invert)
        self.case_view.show_heatmap(loaded.image_id, self._heatmaps.get(loaded.image_id))
        self.status.clearMessage()
        self.sigCaseShown.emit(loaded.image_id)
        self._prefetch(self.worklist_filter.image_id_at(self.worklist_filter.proxy_row_of(loaded.image_id) + 1))

    def _prefetch(self, image_id: str | None) -> None:
        """Decode the next case while this one is read, so stepping on is instant."""
        if image_id is None or image_id in self._images or self.session is None:
            return
        worker = Worker(load_image, image_id, self.session.case(image_id).path)
        worker.sigFinished.connect(self._image_loaded)  # errors show when the user gets there
        self.pool.start(worker)

    def _image_failed(self, error: Exception) -> None:
        self.case_view.show_problem(str(error))
        self.status.clearMessage()

    def _update_info(self, case: Case) -> None:
        self.info.set_case(case_fields(case))
        self.info.set_findings(self.findings.finding_fields(case))

    # -- AI results --------------------------------------------------------------------------------
    @staticmethod
    def _job(kind: JobKind, case: Case) -> ModelJob:
        return ModelJob(kind, case.image_id, case.path, case.pixel_spacing_mm)

    def _predicted(self, image_id: str, finding: AiFinding) -> None:
        if self.session is None or self.worklist_model.row(image_id) is None:
            return  # a result for a session that was closed meanwhile
        self.findings.record_prediction(image_id, finding)
        self.session.apply_prediction(image_id, finding.prediction)

    def _heatmap_ready(self, image_id: str, heatmap: np.ndarray) -> None:
        self._heatmaps[image_id] = heatmap
        while len(self._heatmaps) > _HEATMAP_CACHE:
            self._heatmaps.popitem(last=False)
        self.case_view.show_heatmap(image_id, heatmap)

    def _ai_job_failed(self, image_id: str, reason: str) -> None:
        self.worklist_model.update_row(image_id, error=reason)
        self.findings.record_failure(image_id, reason)
        if image_id == self.current_id:
            self._update_info(self.session.case(image_id))
        if image_id == self.current_id:
            self.status.showMessage(f"AI could not process this image: {reason}", 10000)

    def _model_ready(self, description: str) -> None:
        problem = self._refused_models.pop() if self._refused_models else None
        if problem is None:
            self.status.show_ai_state(f"AI: {description}")
        else:  # the chosen model was refused and the bundled one took its place: a lasting red note, reason on hover
            self.status.show_ai_state(f"AI: {description} (bundled; the chosen model was not used)", str(problem))
            self._warn("Model not used", f"{problem}\nThe bundled model is used instead.")
        threshold = ((self.model_queue.model_card or {}).get("settings") or {}).get("presence_threshold")
        self.findings.presence_threshold = None if threshold is None else float(threshold)
        self.findings.model_problem = None
        if self.current_id is not None:
            self._update_info(self.session.case(self.current_id))

    def _model_failed(self, reason: str) -> None:
        self.status.show_ai_state("AI unavailable", reason)
        self.findings.model_problem = "no AI model (see the status bar)"
        if self.current_id is not None:
            self._update_info(self.session.case(self.current_id))
        for row in self.worklist_model.rows():
            if row.score is None:
                self.worklist_model.update_row(row.image_id, error=f"AI unavailable: {reason}")
        # No modal box: the red status-bar note (reason in its tooltip) stays while viewing and editing work.
        self.status.showMessage(f"The AI model could not be loaded, so there will be no predictions: {reason}", 30000)

    # -- case changes (edits, statuses, AI) -----------------------------------------------------------
    def _case_changed(self, case: Case, change: CaseChange) -> None:
        if change is CaseChange.MASK:
            self.findings.forget_mask(case.image_id)
        if change is CaseChange.STATUS:
            self._update_counter()
        if case.image_id == self.current_id:
            self._refresh_row(case)
            self.info.set_findings(self.findings.finding_fields(case))
        else:
            # Other cases change in bulk (an import, the AI sweep): measuring each mask here, one after
            # another, would hold up the window; their rows are refreshed a few milliseconds at a time.
            self._stale_rows[case.image_id] = case
            if not self._row_timer.isActive():
                self._row_timer.start()

    def _refresh_row(self, case: Case) -> None:
        self.worklist_model.update_row(
            case.image_id, score=case.ai_score, status=case.status.value, area_cm2=self.findings.row_area(case),
            ai_positive=self.findings.ai_positive(case),
        )

    def _refresh_stale_rows(self) -> None:
        deadline = time.perf_counter() + _ROW_REFRESH_BUDGET_S
        while self._stale_rows and time.perf_counter() < deadline:
            self._refresh_row(self._stale_rows.pop(next(iter(self._stale_rows))))
        if self._stale_rows:
            self._row_timer.start()

    def _update_counter(self) -> None:
        layout.show_counter(self, counter_text(self.session))

    def set_status(self, status: ReviewStatus) -> None:
        if self.case_view.read_only:
            self.status.showMessage("Annotations are being imported: review again in a moment", 4000)
        elif self.session is not None and self.current_id is not None:
            self.session.set_status(self.current_id, status)

    # -- navigation -------------------------------------------------------------------------------
    def step_case(self, step: int) -> None:
        row = self.worklist_filter.proxy_row_of(self.current_id) if self.current_id else -1
        self._select_proxy_row(max(0, min(row + step, self.worklist_filter.rowCount() - 1)))

    def _select_proxy_row(self, row: int) -> None:
        if not 0 <= row < self.worklist_filter.rowCount():
            return
        index = self.worklist_filter.index(row, 0)
        self._selecting = True
        try:
            self.worklist.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            )
        finally:
            self._selecting = False
        self.worklist.scrollTo(index)

    def _follow_the_top(self) -> None:
        if self._follow_top and self.worklist_filter.image_id_at(0) not in (None, self.current_id):
            self._select_proxy_row(0)

    def _reader_acted(self, *_: object) -> None:
        self._follow_top = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.Wheel):
            self._follow_top = False  # the reader is working on the case on screen: leave it there
        return super().eventFilter(watched, event)

    def _selected_image_id(self) -> str | None:
        indexes = self.worklist.selectionModel().selectedRows()
        return self.worklist_filter.image_id_at(indexes[0].row()) if indexes else None

    def _selection_changed(self) -> None:
        if not self._selecting:
            self._follow_top = False  # a click in the list
        image_id = self._selected_image_id()
        if image_id is not None:
            self.show_case(image_id)

    # -- background work --------------------------------------------------------------------------
    def _run_task(self, worker: Worker) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = worker
        worker.sigProgress.connect(self.status.show_progress)
        worker.sigFinished.connect(self._task_done)
        worker.sigErrored.connect(self._task_failed)
        worker.sigAborted.connect(lambda: self.status.showMessage("Cancelled", 5000))
        worker.sigDone.connect(self._task_ended)
        self.status.show_progress(0, 0, "Working…")
        self.pool.start(worker)

    def _task_failed(self, error: Exception) -> None:
        self._warn("That did not work", str(error))

    def _task_ended(self) -> None:
        if self.sender() is self._task:
            self._task = None
        self._refresh_busy()

    def _refresh_busy(self) -> None:
        if self._task is None and not self.model_queue.running:
            self.status.set_idle()

    def cancel_work(self) -> None:
        self.model_queue.cancel()
        if self._task is not None:
            self._task.cancel()

    def _warn(self, title: str, text: str) -> None:
        self.status.showMessage(f"{title}: {text.splitlines()[0] if text else ''}", 15000)
        if not self.property("quiet"):  # tests set "quiet" so no modal box waits for a click
            QMessageBox.warning(self, title, text)

    # -- wiring ---------------------------------------------------------------------------------
    def _connect(self) -> None:
        a = self.actions
        a["open_folder"].triggered.connect(self._ask_folder)
        a["open_files"].triggered.connect(self._ask_files)
        a["open_demo"].triggered.connect(lambda: self.open_folder(demo_dir()))
        a["import_csv"].triggered.connect(self._ask_import)
        a["export_csv"].triggered.connect(lambda: self._ask_export(True))
        a["export_png"].triggered.connect(lambda: self._ask_export(False))
        a["quit"].triggered.connect(self.close)
        a["next_case"].triggered.connect(lambda: self.step_case(+1))
        a["previous_case"].triggered.connect(lambda: self.step_case(-1))
        a["predict_all"].triggered.connect(self.predict_all)
        a["choose_model"].triggered.connect(self._ask_model)
        a["cancel_work"].triggered.connect(self.cancel_work)
        for status in ReviewStatus:
            a[f"status_{status.value}"].triggered.connect(lambda _=False, s=status: self.set_status(s))
        a["undo"].triggered.connect(self.case_view.undo)
        a["redo"].triggered.connect(self.case_view.redo)
        a["start_from_ai"].triggered.connect(self.case_view.start_from_ai)
        a["clear_mask"].triggered.connect(self.case_view.clear_mask)
        group = QActionGroup(self)
        for mode, name in MODE_ACTIONS.items():
            group.addAction(a[name])
            a[name].triggered.connect(lambda _=False, m=mode: self.case_view.set_mode(m))
        a["fit"].triggered.connect(self.canvas.fit)
        a["invert"].toggled.connect(self.canvas.set_user_invert)
        for preset in ("default", "full", "narrow", "wide"):
            a[f"window_{preset}"].triggered.connect(lambda _=False, p=preset: self.canvas.window_preset(p))
        a["toggle_ai"].toggled.connect(self.canvas.ai_item.setVisible)
        a["toggle_ai_contour"].toggled.connect(self.canvas.set_ai_contour)
        a["toggle_edit"].toggled.connect(self.canvas.edit_item.setVisible)
        a["toggle_heatmap"].toggled.connect(self._heatmap_toggled)
        a["shortcuts"].triggered.connect(lambda: ShortcutsDialog(self).exec())
        a["about_model"].triggered.connect(
            lambda: ModelCardDialog(self.model_queue.model_card, self.model_queue.model_error, self).exec()
        )
        self.tools.ai_overlay.sigOpacityChanged.connect(self.canvas.ai_item.setOpacity)
        self.tools.edit_overlay.sigOpacityChanged.connect(self.canvas.edit_item.setOpacity)
        self.tools.heatmap_overlay.sigOpacityChanged.connect(self.canvas.heatmap_item.setOpacity)
        self.canvas.ai_item.setOpacity(self.tools.ai_overlay.slider.value() / 100)
        self.canvas.edit_item.setOpacity(self.tools.edit_overlay.slider.value() / 100)
        self.canvas.heatmap_item.setOpacity(self.tools.heatmap_overlay.slider.value() / 100)
        self.canvas.set_heatmap_visible(False)
        self.tools.sigBrushRadiusChanged.connect(self.case_view.set_brush_radius)
        self.case_view.set_brush_radius(self.tools.brush_radius)
        self.canvas.sigCursorMoved.connect(self.status.show_pixel)
        self.canvas.sigWindowChanged.connect(self.status.show_window)
        self.status.sigCancelRequested.connect(self.cancel_work)
        self.worklist.selectionModel().selectionChanged.connect(self._selection_changed)
        self.worklist_model.layoutChanged.connect(self._follow_the_top)
        for action in a.values():
            action.triggered.connect(self._reader_acted)
        self.panels.status_filter.activated.connect(self._reader_acted)
        self.worklist.horizontalHeader().sectionClicked.connect(self._reader_acted)
        for watched in (self.canvas.viewport(), self.worklist.viewport()):
            watched.installEventFilter(self)
        self.sigSessionCaseChanged.connect(self._case_changed)
        mq = self.model_queue
        mq.sigPredicted.connect(self._predicted)
        mq.sigHeatmap.connect(self._heatmap_ready)
        mq.sigJobFailed.connect(self._ai_job_failed)
        mq.sigModelFailed.connect(self._model_failed)
        mq.sigModelReady.connect(self._model_ready)
        mq.sigProgress.connect(lambda done, total, text: self._task is None and self.status.show_progress(done, total, text))
        mq.sigRunningChanged.connect(lambda running: running or self._refresh_busy())

    def _heatmap_toggled(self, visible: bool) -> None:
        self.canvas.set_heatmap_visible(visible)
        if visible and self.current_id is not None and self.current_id not in self._heatmaps:
            case = self.session.case(self.current_id)
            self.model_queue.prioritise([self._job(JobKind.HEATMAP, case)])

    def _ask_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Use another AI model", str(Path.home()),
                                              "Model weights (*.safetensors *.pth)")
        if path:
            self.use_model(Path(path))

    def closeEvent(self, event: QCloseEvent) -> None:
        layout.save_preferences(self)
        self.cancel_work()
        if self._loader is not None:
            self._loader.cancel()
        self.pool.shutdown()
        self._close_session()
        super().closeEvent(event)
