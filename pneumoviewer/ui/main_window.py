"""The main window: worklist on the left, the case in the middle, tools and findings on the right.

It builds the widgets and connects them to the review controller (controller.py), which holds the
state and does the work: widgets call its slots for what the user asked and draw what its signals
say. Dialogs and drag-and-drop live here, since they need a window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, Qt, QTimer
from PySide6.QtGui import QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QPaintEvent
from PySide6.QtWidgets import QDialog, QFileDialog, QMainWindow, QMessageBox

from pneumoviewer.paths import demo_dir
from pneumoviewer.reports import model_facts
from pneumoviewer.ui import layout, preferences
from pneumoviewer.ui.actions import build_actions
from pneumoviewer.ui.case_view import CaseView
from pneumoviewer.ui.controller import ReviewController
from pneumoviewer.ui.info_panel import InfoPanel
from pneumoviewer.ui.model_runner import default_predictor
from pneumoviewer.ui.report_actions import ReportActions
from pneumoviewer.ui.statistics_dock import StatisticsDock
from pneumoviewer.ui.status_bar import StatusBar
from pneumoviewer.ui.tools import MODE_ACTIONS, ToolPanel
from pneumoviewer.ui.triage_panel import TriagePanel
from pneumoviewer.ui.worklist_table import WorklistTable

STATUS_ACTIONS = ("accepted", "corrected", "rejected", "unreviewed")  # status_<value> actions


class MainWindow(QMainWindow):
    def __init__(self, predictor_factory: Callable[[], Any] = default_predictor, data_dir: Path | None = None,
                 model_checkpoint: Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle("PneumoViewer")
        self.controller = ReviewController(predictor_factory, data_dir, model_checkpoint, self)
        self.actions_by_name = build_actions(self)
        self.case_view = CaseView()
        self.canvas = self.case_view.canvas
        self.tools = ToolPanel(self.actions_by_name, self)
        self.info = InfoPanel()
        self.triage = TriagePanel()
        self.worklist_model = self.controller.worklist_model
        self.worklist = WorklistTable(self.worklist_model)
        self.reports = ReportActions(self.controller, self)
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.panels = layout.build(self, self.case_view, self.worklist, self.tools, self.info, self.actions_by_name,
                                   self.triage)
        self.statistics = StatisticsDock(self.controller, self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.statistics)
        self.statistics.hide()
        self._show_recent_folders(preferences.recent_folders())
        self._connect_view()
        self._connect_controller()
        self.setAcceptDrops(True)  # drop a folder or DICOM files on the window to open them
        self._model_loading = False
        self.pacs_dialog: QDialog | None = None  # the PACS dialog open now (window-modal, never blocking)
        self._docks_fitted = preferences.restore_preferences(self, self.tools,
                                                             self.actions_by_name["toggle_ai_contour"])
        self.controller.set_triage_sensitivity(preferences.triage_sensitivity())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._docks_fitted:
            self._docks_fitted = True
            layout.fit_docks(self, self.panels.worklist_dock, self.worklist)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if not self._model_loading:
            # The model loads once the window is on screen (loading it first would delay the window),
            # and before the reader needs it: then the first prediction does not wait for torch.
            self._model_loading = True
            QTimer.singleShot(0, self.controller.warm_up)

    # -- widgets -> controller ------------------------------------------------------------------------
    def _connect_view(self) -> None:
        a, c, canvas = self.actions_by_name, self.controller, self.canvas
        a["open_folder"].triggered.connect(self._ask_folder)
        a["open_files"].triggered.connect(self._ask_files)
        a["open_demo"].triggered.connect(lambda: c.open_folder(demo_dir()))
        a["import_csv"].triggered.connect(self._ask_import)
        a["export_csv"].triggered.connect(lambda: self._ask_export(True))
        a["export_png"].triggered.connect(lambda: self._ask_export(False))
        a["export_dicom"].triggered.connect(self._ask_export_dicom)
        a["open_pacs"].triggered.connect(self._open_from_pacs)
        a["send_pacs"].triggered.connect(self._send_to_pacs)
        a["quit"].triggered.connect(self.close)
        a["next_case"].triggered.connect(lambda: c.step_case(+1))
        a["previous_case"].triggered.connect(lambda: c.step_case(-1))
        a["predict_all"].triggered.connect(c.predict_all)
        a["score_unvalidated"].toggled.connect(c.set_score_unvalidated)
        a["choose_model"].triggered.connect(self._ask_model)
        a["improve_ai"].triggered.connect(self._show_finetune)
        a["model_versions"].triggered.connect(self._show_model_versions)
        a["cancel_work"].triggered.connect(c.cancel_work)
        for status in STATUS_ACTIONS:
            a[f"status_{status}"].triggered.connect(lambda _=False, s=status: c.set_status(s))
        a["undo"].triggered.connect(self.case_view.undo)
        a["redo"].triggered.connect(self.case_view.redo)
        a["start_from_ai"].triggered.connect(self.case_view.start_from_ai)
        a["clear_mask"].triggered.connect(self.case_view.clear_mask)
        group = QActionGroup(self)
        for mode, name in MODE_ACTIONS.items():
            group.addAction(a[name])
            a[name].triggered.connect(lambda _=False, m=mode: self.case_view.set_mode(m))
        a["fit"].triggered.connect(canvas.fit)
        a["invert"].toggled.connect(canvas.set_user_invert)
        for preset in ("default", "full", "narrow", "wide"):
            a[f"window_{preset}"].triggered.connect(lambda _=False, p=preset: canvas.window_preset(p))
        a["toggle_ai"].toggled.connect(canvas.ai_item.setVisible)
        a["toggle_ai_contour"].toggled.connect(canvas.set_ai_contour)
        a["toggle_edit"].toggled.connect(canvas.edit_item.setVisible)
        a["toggle_heatmap"].toggled.connect(canvas.set_heatmap_visible)
        a["toggle_heatmap"].toggled.connect(c.set_heatmaps_wanted)
        a["toggle_lesions"].toggled.connect(self.case_view.set_lesions_visible)
        a["show_statistics"].toggled.connect(self.statistics.setVisible)
        self.statistics.visibilityChanged.connect(a["show_statistics"].setChecked)
        self.statistics.sigFilterChanged.connect(
            lambda text: self.status.showMessage(f"Worklist: only {text}" if text else "All cases shown", 0))
        a["save_case_report"].triggered.connect(lambda: self._ask_report(self.reports.save_case_report, "case"))
        a["save_worklist_report"].triggered.connect(lambda: self._ask_report(self.reports.save_worklist_report,
                                                                             "worklist"))
        self.case_view.sigLesionsChanged.connect(self.info.lesions_box.set_lesions)
        self.case_view.sigLesionHovered.connect(self.info.lesions_box.highlight)
        self.case_view.ai_note = lambda score: model_facts.ai_note(c.model_queue.model_card, score)
        a["shortcuts"].triggered.connect(self._show_shortcuts)
        a["about_model"].triggered.connect(self._show_model_card)
        for control, item in ((self.tools.ai_overlay, canvas.ai_item), (self.tools.edit_overlay, canvas.edit_item),
                              (self.tools.heatmap_overlay, canvas.heatmap_item)):
            control.sigOpacityChanged.connect(item.setOpacity)
            item.setOpacity(control.slider.value() / 100)
        canvas.set_heatmap_visible(False)
        self.tools.sigBrushRadiusChanged.connect(self.case_view.set_brush_radius)
        self.case_view.set_brush_radius(self.tools.brush_radius)
        canvas.sigCursorMoved.connect(self.status.show_pixel)
        canvas.sigWindowChanged.connect(self.status.show_window)
        self.status.sigCancelRequested.connect(c.cancel_work)
        self.triage.sigSensitivityChosen.connect(c.set_triage_sensitivity)
        self.triage.sigSensitivityChosen.connect(preferences.save_triage_sensitivity)
        self.worklist.selectionModel().selectionChanged.connect(self._selection_changed)
        self.panels.status_filter.currentIndexChanged.connect(
            lambda _: self.worklist_model.set_statuses(self.panels.status_filter.currentData())
        )
        for action in a.values():
            action.triggered.connect(c.reader_acted)
        self.panels.status_filter.activated.connect(c.reader_acted)
        self.worklist.horizontalHeader().sectionClicked.connect(c.reader_acted)
        for watched in (canvas.viewport(), self.worklist.viewport()):
            watched.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.Wheel):
            self.controller.reader_acted()  # the reader is working on the case on screen: leave it there
        return super().eventFilter(watched, event)

    def _selection_changed(self) -> None:
        indexes = self.worklist.selectionModel().selectedRows()
        image_id = self.worklist_model.image_id_at(indexes[0].row()) if indexes else None
        if image_id is not None:
            self.controller.show_case(image_id)

    # -- controller -> widgets ------------------------------------------------------------------------
    def _connect_controller(self) -> None:
        c, view, status = self.controller, self.case_view, self.status
        c.sigTitleChanged.connect(lambda title: self.setWindowTitle(f"PneumoViewer — {title}" if title
                                                                   else "PneumoViewer"))
        c.sigUnreadable.connect(lambda reasons: layout.show_unreadable(self.panels, reasons))
        c.sigRecentFolders.connect(self._show_recent_folders)
        c.sigNote.connect(view.show_note)
        c.sigCurrentCase.connect(self._show_current_case)
        c.sigCaseFields.connect(self.info.set_case)
        c.sigFindingFields.connect(self.info.set_findings)
        c.sigPixels.connect(view.show_image)
        c.sigImageFailed.connect(lambda image_id, reason: view.show_problem(reason))
        c.sigHeatmap.connect(view.show_heatmap)
        c.sigCaseChanged.connect(view.case_changed)
        c.sigCounter.connect(self.panels.counter.setText)
        c.sigMessage.connect(lambda text, ms: status.showMessage(text, ms) if text else status.clearMessage())
        c.sigWarning.connect(self._warn)
        c.sigAiState.connect(lambda text, problem: status.show_ai_state(text, problem or None))
        c.sigProgress.connect(status.show_progress)
        c.sigIdle.connect(status.set_idle)
        c.sigReadOnly.connect(lambda read_only: setattr(view, "read_only", read_only))
        c.sigTriagePoint.connect(self.triage.show_point)

    def _show_current_case(self, case: Any) -> None:
        self.case_view.show_case(case)
        if case is None:
            self.info.clear()
            return
        row = self.worklist_model.row_of(case.image_id)
        if row >= 0:  # the list follows (its selection echo is a no-op: that case is already current)
            index = self.worklist_model.index(row, 0)
            self.worklist.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            )
            self.worklist.scrollTo(index)

    def _show_recent_folders(self, folders: list[Path]) -> None:
        layout.refresh_recent_menu(self.panels.recent_menu, folders, self.controller.open_folder)

    def _warn(self, title: str, text: str) -> None:
        if not self.property("quiet"):  # tests set "quiet" so no modal box waits for a click
            QMessageBox.warning(self, title, text)

    # -- dialogs and drops (dialogs.py is imported when first asked for: it needs the review stack) --------
    def _show_shortcuts(self) -> None:
        from pneumoviewer.ui.dialogs import ShortcutsDialog

        ShortcutsDialog(self).exec()

    def _show_model_card(self) -> None:
        from pneumoviewer.ui.dialogs import ModelCardDialog

        ModelCardDialog(self.controller.model_queue.model_card, self.controller.model_queue.model_error, self).exec()

    def _show_finetune(self) -> None:
        from pneumoviewer.ui.finetune_dialog import FinetuneDialog

        dialog = getattr(self, "finetune_dialog", None)
        if dialog is None:
            dialog = self.finetune_dialog = FinetuneDialog(self.controller, self)
        dialog.gather()
        dialog.show()
        dialog.raise_()

    def _show_model_versions(self) -> None:
        from pneumoviewer.ui.finetune_dialog import ModelVersionsDialog

        ModelVersionsDialog(self.controller, self).exec()

    def _ask_folder(self) -> None:
        recent = preferences.recent_folders()
        start = recent[0] if recent else Path.home()
        folder = QFileDialog.getExistingDirectory(self, "Open folder of DICOMs", str(start))
        if folder:
            self.controller.open_folder(Path(folder))

    def _ask_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open DICOM files", str(Path.home()),
                                                "DICOM (*.dcm);;All files (*)")
        if files:
            self.controller.open_paths([Path(file) for file in files])

    def _ask_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Use another AI model", str(Path.home()),
                                              "Model weights (*.safetensors *.pth)")
        if path:
            self.controller.use_model(Path(path))

    def _ask_export(self, is_csv: bool) -> None:
        from pneumoviewer.ui.dialogs import ExportDialog

        session = self.controller.session
        if session is None:
            return
        name = session.folder.name or "annotations"
        suggested = Path.home() / (f"{name}-annotations.csv" if is_csv else f"{name}-masks")
        dialog = ExportDialog("Export annotations" if is_csv else "Export PNG masks", suggested, is_csv, self)
        if dialog.exec():
            if is_csv:
                self.controller.export_csv(dialog.path, dialog.rle_convention, dialog.scope)
            else:
                self.controller.export_pngs(dialog.path, dialog.scope)

    def _ask_export_dicom(self) -> None:
        if self.controller.session is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export DICOM SEG and overlays of the reviewed cases into",
                                                  str(Path.home()))
        if folder:
            self.controller.export_dicom(Path(folder))

    def _open_from_pacs(self) -> None:
        from pneumoviewer.paths import pacs_cache_dir
        from pneumoviewer.ui.pacs_dialogs import OpenFromPacsDialog

        self.pacs_dialog = OpenFromPacsDialog(pacs_cache_dir(), parent=self)
        self.pacs_dialog.sigRetrieved.connect(lambda folders: self.controller.open_paths(folders) if folders
                                              else None)
        self.pacs_dialog.open()

    def _send_to_pacs(self) -> None:
        from pneumoviewer.pacs.outbox import outbox_for
        from pneumoviewer.ui.pacs_dialogs import SendToPacsDialog

        session = self.controller.session
        if session is None:
            return
        current = session.case(self.controller.current_id) if self.controller.current_id is not None else None
        self.pacs_dialog = SendToPacsDialog(session.cases, outbox_for(session.folder),
                                            self.controller.model_queue.model_key, parent=self, current=current)
        self.pacs_dialog.open()
    def _ask_report(self, save: Callable[[Path], None], kind: str) -> None:
        session, current = self.controller.session, self.controller.current_id
        if session is None or (kind == "case" and current is None):
            return
        case = session.case(current) if kind == "case" and current is not None else None
        name = case.display_id.replace(" ", "-").lower() if case else f"{session.folder.name or 'worklist'}-summary"
        path, _ = QFileDialog.getSaveFileName(self, "Save case report" if case else "Save worklist report",
                                              str(Path.home() / f"{name}.pdf"), "PDF (*.pdf);;PNG pages (*.png)")
        if path:
            save(Path(path))

    def _ask_import(self) -> None:
        from pneumoviewer.ui.dialogs import ask_rle_convention

        if self.controller.session is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import annotations", str(Path.home()), "CSV (*.csv)")
        convention = ask_rle_convention(Path(path), self) if path else None
        if convention is not None:
            self.controller.import_csv(Path(path), convention)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.controller.open_paths(paths)

    def closeEvent(self, event: QCloseEvent) -> None:
        preferences.save_preferences(self, self.tools, self.actions_by_name["toggle_ai_contour"])
        finetune_dialog = getattr(self, "finetune_dialog", None)
        if finetune_dialog is not None:
            finetune_dialog.runner.cancel()  # a training process does not outlive the window
        self.controller.close()
        super().closeEvent(event)
