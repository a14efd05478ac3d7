"""Opening studies as a user does: the command line, the File menu, recent folders, drops; a large folder
listing while it is read; the AI queue following the reader; another model chosen from the menu."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog
from ui_driver import (
    NEGATIVES,
    POSITIVES,
    WAIT_MS,
    SlowPredictor,
    open_and_wait,
    paint,
    predictor_scoring_last_highest,
    wait_for_predictions,
)

from pneumoviewer.review.case import ReviewStatus

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder


def test_the_command_line_opens_a_folder_or_files(qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  study_folder: Path) -> None:
    """`pneumoviewer FOLDER` and `pneumoviewer FILE FILE` open the window on them (the real cli.main)."""
    from pneumoviewer.cli import main
    from pneumoviewer.ui.main_window import MainWindow

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    opened = []

    def exec_until_opened(self) -> int:
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        qtbot.waitUntil(lambda: window.controller.session is not None, timeout=WAIT_MS)
        opened.append(sorted(case.path.name for case in window.controller.session.cases))
        window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", exec_until_opened)
    files = sorted(path for path in study_folder.rglob("*.dcm") if path.name != "broken.dcm")
    assert main([str(study_folder)]) == 0
    assert main([str(files[0]), str(files[1])]) == 0
    assert opened == [sorted(path.name for path in files), sorted([files[0].name, files[1].name])]


def test_file_menu_open_folder_open_files_and_recent_folders(qtbot, make_window, monkeypatch: pytest.MonkeyPatch,
                                                             study_folder: Path) -> None:
    window = make_window()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(study_folder))
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        QTest.keySequence(window, "Ctrl+O")
    assert len(window.controller.session) == POSITIVES + NEGATIVES
    files = sorted(path for path in study_folder.rglob("*.dcm") if path.name != "broken.dcm")[:2]
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *args, **kwargs: ([str(f) for f in files], ""))
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        QTest.keySequence(window, "Ctrl+Shift+O")
    assert len(window.controller.session) == 2
    recent = window.panels.recent_menu.actions()
    assert [action.text() for action in recent] == [str(study_folder.resolve())]
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        recent[0].trigger()
    assert len(window.controller.session) == POSITIVES + NEGATIVES


def test_folders_and_files_dropped_on_the_window_open_together(qtbot, make_window, study_folder: Path) -> None:
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window()
    dropped = [study_folder / "study0", study_folder / "study1", next((study_folder / "study2").glob("*.dcm"))]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in dropped])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        window.dropEvent(event)  # what Qt calls on a drop (offscreen there is no drag-and-drop session)
    assert event.isAccepted()
    assert len(window.controller.session) == 3
    assert window.windowTitle() == f"PneumoViewer — 3 files and folders in {study_folder.resolve()}"


def test_a_folder_lists_its_studies_while_the_headers_are_still_being_read(qtbot, make_window, study_folder: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from pneumoviewer.io import dicom

    read_header, headers_read, go_on = dicom.read_header, [], threading.Event()

    def slow_after_two(path):
        if len(headers_read) == 2:
            go_on.wait(30)  # a slow network share, after two studies
        metadata = read_header(path)
        headers_read.append(path)
        return metadata

    monkeypatch.setattr(dicom, "read_header", slow_after_two)
    window = make_window()
    window.controller.open_paths([study_folder])
    model = window.worklist_model
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=WAIT_MS)
    assert window.controller.session is None and window.status.progress.isVisible()
    assert [row.display_id for row in model.rows()] == ["Case 0001", "Case 0002"]
    second = model.rows()[1].image_id
    table = window.worklist
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     table.visualRect(window.worklist_model.index(1, 0)).center())
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        go_on.set()
    assert model.rowCount() == POSITIVES + NEGATIVES
    assert window.controller.current_id == second  # the row the reader clicked while it was listing
    assert window.controller.session.case(second).display_id == "Case 0002"


def test_the_rows_listed_while_indexing_stay_when_the_session_says_the_same(qtbot, make_window,
                                                                            study_folder: Path) -> None:
    """A folder opened for the first time: each listed row already says what the session's would, so the
    worklist keeps them without a model reset (for 10,000 rows a relayout and repaint of the whole list);
    reopened with stored AI results, the session's rows replace them."""
    first = make_window()
    resets_with_a_session: list[int] = []
    first.worklist_model.modelReset.connect(
        lambda: resets_with_a_session.append(1) if first.controller.session is not None else None)
    open_and_wait(qtbot, first, study_folder)
    assert resets_with_a_session == []
    assert first.worklist_model.total_count == POSITIVES + NEGATIVES
    wait_for_predictions(qtbot, first)
    first.close()

    second = make_window()
    second.worklist_model.modelReset.connect(
        lambda: resets_with_a_session.append(2) if second.controller.session is not None else None)
    open_and_wait(qtbot, second, study_folder)
    assert resets_with_a_session == [2]  # the stored scores came with the session
    assert all(row.score is not None for row in second.worklist_model.rows())


def test_the_case_clicked_during_the_sweep_is_predicted_next(qtbot, make_window, study_folder: Path,
                                                             random_checkpoint: Path) -> None:
    window = make_window(lambda: SlowPredictor(random_checkpoint, delay_s=0.3))
    order: list[str] = []
    window.controller.model_queue.sigPredicted.connect(lambda image_id, _: order.append(image_id))
    open_and_wait(qtbot, window, study_folder)
    qtbot.waitUntil(lambda: len(order) >= 1, timeout=WAIT_MS)
    table = window.worklist
    last = window.worklist_model.rowCount() - 1
    clicked = window.worklist_model.image_id_at(last)
    queued = [job.image_id for job in window.controller.model_queue.pending()]
    assert clicked in queued and queued.index(clicked) >= 1  # others are ahead of it
    done_at_click = len(order)
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     table.visualRect(window.worklist_model.index(last, 0)).center())
    assert window.controller.current_id == clicked
    wait_for_predictions(qtbot, window)
    # Next after the job that was running at the click.
    assert order.index(clicked) <= done_at_click + 1


def test_until_the_reader_acts_the_screen_follows_the_top_of_the_worklist(qtbot, make_window, study_folder: Path,
                                                                          random_checkpoint: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pneumoviewer.io import images

    scored, load_and_remember, likeliest = predictor_scoring_last_highest(random_checkpoint, study_folder)
    monkeypatch.setattr(images, "load_radiograph", load_and_remember)  # the AI thread's loads name the study
    window = make_window(lambda: scored)
    open_and_wait(qtbot, window, study_folder, reader_starts=False)
    first = window.controller.current_id
    assert first != likeliest  # folder order first: no scores yet
    wait_for_predictions(qtbot, window)
    qtbot.waitUntil(lambda: window.controller.current_id == likeliest, timeout=WAIT_MS)  # the top, without a key pressed
    assert window.worklist.selectionModel().selectedRows()[0].row() == 0

    # Once the reader has pressed a key, the case stays where the reader put it.
    QTest.keyClick(window, Qt.Key.Key_J)
    chosen = window.controller.current_id
    QTest.keySequence(window, "Ctrl+P")  # scores arrive again, the list re-sorts
    wait_for_predictions(qtbot, window)
    QTest.qWait(2 * window.worklist_model.RESORT_DELAY_MS)
    assert window.controller.current_id == chosen


def test_another_model_can_be_chosen_from_the_menu_and_edits_stay(qtbot, make_window, study_folder: Path,
                                                                  random_checkpoint: Path, monkeypatch) -> None:
    def missing_model():
        raise RuntimeError("pneumoviewer/resources/models/default.safetensors: the model file is missing")

    window = make_window(missing_model)
    open_and_wait(qtbot, window, study_folder)
    qtbot.waitUntil(lambda: window.controller.model_queue.model_error is not None, timeout=WAIT_MS)
    case = window.controller.session.case(window.controller.current_id)
    QTest.keyClick(window, Qt.Key.Key_B)
    paint(window, 300, (300, 400))
    drawn = case.mask.copy()

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(random_checkpoint), ""))
    menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&Worklist")
    next(action for action in menu.actions() if action.objectName() == "choose_model").trigger()
    wait_for_predictions(qtbot, window)
    assert all(row.error is None for row in window.worklist_model.rows())
    assert window.status.ai_label.text().startswith(f"AI: {random_checkpoint.name}")
    assert window.status.ai_label.toolTip() == ""  # no longer the red "unavailable" note
    assert np.array_equal(case.mask, drawn) and case.status is ReviewStatus.CORRECTED
    QTest.keySequence(window, "Ctrl+Z")  # the undo history survived the model change
    assert not case.mask.any()


def test_a_reopened_folder_reuses_its_ai_results_and_runs_the_network_only_on_what_is_new(
    qtbot, make_window, study_folder: Path, siim_dir: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    """Predictions live in the session store under the model's fingerprint: a restart shows the sorted
    worklist at once, predicts only a file added since, and everything again under another model."""
    import shutil

    from pneumoviewer.model.inference import Predictor
    from pneumoviewer.ui.worklist import SCORE_COLUMN, SORT_ROLE

    folder = tmp_path / "studies"
    shutil.copytree(study_folder, folder)
    first = make_window()
    open_and_wait(qtbot, first, folder)
    wait_for_predictions(qtbot, first)
    scores = {row.image_id: row.score for row in first.worklist_model.rows()}
    first.close()

    added = next(path for path in sorted((siim_dir / "dicom-images").rglob("*.dcm")) if path.stem not in scores)
    shutil.copyfile(added, folder / added.name)
    second = make_window()
    runs: list[str] = []
    second.controller.model_queue.sigPredicted.connect(lambda image_id, _: runs.append(image_id))
    opened_rows = []
    second.controller.sigSessionOpened.connect(lambda: opened_rows.extend(second.worklist_model.rows()))
    open_and_wait(qtbot, second, folder)
    assert {row.image_id: row.score for row in opened_rows if row.image_id in scores} == scores  # at once
    proxy = second.worklist_model
    shown = [proxy.data(proxy.index(row, SCORE_COLUMN), SORT_ROLE) for row in range(proxy.rowCount())]
    assert shown[:len(scores)] == sorted(scores.values(), reverse=True)  # sorted, the new file last (no score)
    wait_for_predictions(qtbot, second)
    assert runs == [added.stem]  # the network ran on the new file only

    # Another model (the same weights with another card: another fingerprint): every case again.
    other = tmp_path / "other.safetensors"
    shutil.copyfile(random_checkpoint, other)
    other.with_suffix(".json").write_text(random_checkpoint.with_suffix(".json").read_text() + "\n")
    runs.clear()
    second.controller.use_model(other)
    qtbot.waitUntil(lambda: len(set(runs)) == len(scores) + 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not second.controller.model_queue.running, timeout=WAIT_MS)
    second.close()

    third = make_window(lambda: Predictor.cached(other), other)  # reopened with that model: nothing to run
    runs_third: list[str] = []
    third.controller.model_queue.sigPredicted.connect(lambda image_id, _: runs_third.append(image_id))
    open_and_wait(qtbot, third, folder)
    qtbot.waitUntil(lambda: third.controller.model_queue.model_key is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not third.controller.model_queue.running, timeout=WAIT_MS)
    assert runs_third == [] and all(row.score is not None for row in third.worklist_model.rows())


def test_segs_beside_their_sources_open_as_masks_and_the_others_are_listed(qtbot, make_window, tmp_path: Path,
                                                                          siim_dir: Path) -> None:
    from pneumoviewer.io.dicom_seg import write_seg
    from pneumoviewer.review.seg_import import NOT_IN_FOLDER

    folder = tmp_path / "with-segs"
    folder.mkdir()
    first, second, foreign = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:3]
    for source in (first, second):
        (folder / source.name).write_bytes(source.read_bytes())
    mask = np.zeros((1024, 1024), dtype=bool)
    mask[300:420, 500:560] = True
    write_seg(folder / "first.seg.dcm", first, mask, None)
    write_seg(folder / "foreign.seg.dcm", foreign, mask, None)
    (folder / "damaged.seg.dcm").write_bytes((folder / "first.seg.dcm").read_bytes()[:4000])  # cut short
    window = make_window()
    open_and_wait(qtbot, window, folder)

    assert window.worklist_model.rowCount() == 2
    listed = sorted(window.panels.unreadable_list.item(row).toolTip()
                    for row in range(window.panels.unreadable_list.count()))
    assert len(listed) == 2, listed
    assert "damaged.seg.dcm" in listed[0] and "foreign.seg.dcm" in listed[1] and NOT_IN_FOLDER in listed[1]
    case = next(case for case in window.controller.session.cases if case.path.name == first.name)
    np.testing.assert_array_equal(case.mask, mask)


def test_a_folder_s_jobs_are_queued_a_few_per_turn_and_each_case_is_predicted_once(
    qtbot, make_window, study_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So that queueing 10,000 jobs never holds the window for one long turn (`JOBS_PER_TURN`); the session
    counts as open once the last of them is queued."""
    from pneumoviewer.ui import controller

    monkeypatch.setattr(controller, "JOBS_PER_TURN", 2)
    window = make_window()
    queued: list[list[str]] = []
    enqueue = window.controller.model_queue.enqueue
    monkeypatch.setattr(window.controller.model_queue, "enqueue",
                        lambda jobs: (queued.append([job.image_id for job in jobs]), enqueue(jobs)))
    predicted: list[str] = []
    window.controller.model_queue.sigPredicted.connect(lambda image_id, _: predicted.append(image_id))
    open_and_wait(qtbot, window, study_folder)
    cases = [case.image_id for case in window.controller.session.cases]
    assert len(cases) == POSITIVES + NEGATIVES > 2
    assert [len(batch) for batch in queued] == [2] * (len(cases) // 2) + [1] * (len(cases) % 2)
    assert sum(queued, []) == cases  # in the worklist's order then: no scores yet, folder order
    wait_for_predictions(qtbot, window)
    assert sorted(predicted) == sorted(cases)  # once each, the case on screen among them


def test_an_indexed_folder_s_rows_are_checked_a_few_per_turn_before_its_session_opens(
    qtbot, make_window, study_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So that checking 10,000 session rows against the listed ones never holds the window for one long turn
    (`ROWS_PER_TURN`): other events are handled between the turns, and the session is the controller's (a
    case can be edited) only once every row is checked. A folder opened meanwhile stops the check."""
    from PySide6.QtCore import QTimer

    from pneumoviewer.ui import controller

    monkeypatch.setattr(controller, "ROWS_PER_TURN", 2)
    window = make_window()
    ticks = [0]
    ticker = QTimer()
    ticker.setInterval(0)
    ticker.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    checked: list[tuple[int, bool]] = []  # (the event loop's tick, the session published yet) per row checked
    session_row = window.controller.findings.session_row
    monkeypatch.setattr(window.controller.findings, "session_row", lambda *args: (
        checked.append((ticks[0], window.controller.session is not None)), session_row(*args))[1])
    ticker.start()
    open_and_wait(qtbot, window, study_folder)
    ticker.stop()
    studies = POSITIVES + NEGATIVES
    assert studies > 2 and len(checked) == studies
    assert not any(published for _, published in checked)
    per_tick = [sum(tick == moment for tick, _ in checked) for moment in sorted({tick for tick, _ in checked})]
    assert max(per_tick) <= 2 and len(per_tick) == (studies + 1) // 2

    checked.clear()  # opened again, and at once another folder: the first one's check goes no further
    other = study_folder.parent / "other"
    other.mkdir()
    (other / "one.dcm").write_bytes(next(study_folder.glob("study0/*.dcm")).read_bytes())
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        window.controller.open_paths([study_folder])
        qtbot.waitUntil(lambda: bool(checked), timeout=WAIT_MS)
        window.controller.open_paths([other])
    assert window.controller.session is not None and len(window.controller.session.cases) == 1
    assert window.worklist_model.total_count == 1
