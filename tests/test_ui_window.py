"""The real main window driven as a user would, offscreen, on a small folder of real SIIM DICOMs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from ui_driver import (
    NEGATIVES,
    POSITIVES,
    WAIT_MS,
    SlowPredictor,
    drag,
    open_and_wait,
    viewport_point,
    wait_for_predictions,
)

from pneumoviewer.io.annotations import read_annotation_masks, read_annotation_rows
from pneumoviewer.io.rle import RleConvention
from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.ui.worklist import SCORE_COLUMN, SORT_ROLE

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder


def test_folder_opens_lists_unreadable_predicts_and_sorts_by_score(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)

    assert window.worklist_model.rowCount() == POSITIVES + NEGATIVES
    unreadable = [window.panels.unreadable_list.item(i).toolTip() for i in range(window.panels.unreadable_list.count())]
    assert len(unreadable) == 1 and "broken.dcm" in unreadable[0]
    wait_for_predictions(qtbot, window)
    proxy = window.worklist_model

    def scores() -> list[float]:
        return [proxy.data(proxy.index(row, SCORE_COLUMN), SORT_ROLE) for row in range(proxy.rowCount())]

    qtbot.waitUntil(lambda: scores() == sorted(scores(), reverse=True))  # re-sorted a moment after the last score
    # Sorting by another column (a header click) reorders the rows.
    window.worklist.sortByColumn(2, Qt.SortOrder.AscendingOrder)
    ages = [proxy.data(proxy.index(row, 2), SORT_ROLE) for row in range(proxy.rowCount())]
    assert ages == sorted(ages)
    # The metadata panel shows the header of the case on screen.
    case = window.controller.session.case(window.controller.current_id)
    assert window.info.case_box.values["Age"].text() == case.patient_age
    assert "mm" in window.info.case_box.values["Pixel spacing"].text()
    # The score with the call it makes at the model's threshold (the test model calls everything positive).
    assert window.info.findings_box.values["AI score"].text() == f"{case.ai_score:.3f} ≥ 0.000: pneumothorax"
    assert window.panels.recent_menu.actions()[0].text() == str(study_folder.resolve())


def test_open_files_indexes_just_those_files(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    files = sorted(study_folder.rglob("*.dcm"))
    chosen = [path for path in files if path.name != "broken.dcm"][:2] + [study_folder / "broken.dcm"]
    open_and_wait(qtbot, window, chosen[0])  # one file
    assert window.worklist_model.rowCount() == 1
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        window.controller.open_paths(chosen)
    assert window.worklist_model.rowCount() == 2
    assert window.panels.unreadable_list.count() == 1
    wait_for_predictions(qtbot, window)  # no job is lost when a new session cancels the old sweep


def test_brush_stroke_with_the_mouse_then_undo_redo_by_keys(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    assert not case.has_mask_pixels

    QTest.keyClick(window, Qt.Key.Key_B)
    assert window.case_view.mode.value == "brush"
    viewport = window.canvas.viewport()
    points = [viewport_point(window, 500, col) for col in (300, 360, 420, 480)]
    drag(viewport, points)

    painted = case.mask.copy()
    assert painted[500, 300:480].all() and not painted[:400].any()
    assert case.status is ReviewStatus.CORRECTED
    # The canvas's RGBA buffer shows the stroke: opaque where painted, clear elsewhere.
    buffer = window.canvas.edit_item.image
    assert buffer[500, 400, 3] == 255 and buffer[100, 100, 3] == 0
    qtbot.waitUntil(lambda: window.worklist_model.row(case.image_id).status == "corrected")

    QTest.keySequence(window, "Ctrl+Z")
    assert not case.mask.any() and window.canvas.edit_item.image[500, 400, 3] == 0
    QTest.keySequence(window, "Ctrl+Shift+Z")
    assert np.array_equal(case.mask, painted) and window.canvas.edit_item.image[500, 400, 3] == 255

    # The AI re-runs (Ctrl+P): the edit and its undo history stay.
    wait_for_predictions(qtbot, window)
    with qtbot.waitSignal(window.controller.model_queue.sigPredicted, timeout=WAIT_MS,
                          check_params_cb=lambda image_id, _: image_id == case.image_id):
        QTest.keySequence(window, "Ctrl+P")
    assert np.array_equal(case.mask, painted)
    QTest.keySequence(window, "Ctrl+Z")
    assert not case.mask.any()
    # Brush size keys.
    radius = window.case_view.brush_radius
    QTest.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.case_view.brush_radius > radius


def test_status_keys_counter_filter_and_next_case(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    first = window.controller.current_id
    QTest.keyClick(window, Qt.Key.Key_R)
    assert window.controller.session.case(first).status is ReviewStatus.REJECTED
    QTest.keyClick(window, Qt.Key.Key_J)  # next case
    second = window.controller.current_id
    assert second != first
    QTest.keyClick(window, Qt.Key.Key_A)
    assert window.controller.session.case(second).status is ReviewStatus.ACCEPTED
    assert window.panels.counter.text().startswith(f"Done 2 / {POSITIVES + NEGATIVES}")
    QTest.keyClick(window, Qt.Key.Key_K)  # previous case
    assert window.controller.current_id == first
    window.panels.status_filter.setCurrentText("To review")
    assert window.worklist_model.rowCount() == POSITIVES + NEGATIVES - 2


def test_window_level_drag_presets_invert_and_pixel_readout(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    canvas = window.canvas
    default = canvas.window
    viewport = canvas.viewport()
    start, end = viewport_point(window, 500, 500), viewport_point(window, 300, 700)
    drag(viewport, [start, end], Qt.MouseButton.RightButton)
    center, width = canvas.window
    assert center > default[0] and width > default[1]  # drag up raises the level, right widens the window
    QTest.keyClick(window, Qt.Key.Key_1)
    assert canvas.window == pytest.approx(default)
    lut_before = canvas.image_item.lut.copy()
    QTest.keyClick(window, Qt.Key.Key_I)
    assert canvas.image_item.lut[0] == lut_before[-1]
    QTest.qWait(50)  # pyqtgraph drops hover moves closer than 1/60 s to the previous one
    QTest.mouseMove(viewport, viewport_point(window, 10, 20))
    qtbot.waitUntil(lambda: window.status.pixel_label.text().startswith("x "))
    # One screen pixel spans more than one image pixel here: the readout is within a pixel of the target.
    _, x, _, y, _, value = window.status.pixel_label.text().split()
    assert abs(int(x) - 20) <= 1 and abs(int(y) - 10) <= 1
    assert float(value) == window.controller.images.get(window.controller.current_id).raw[int(y), int(x)]


def test_start_from_ai_fill_clear_and_heatmap(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    qtbot.waitUntil(lambda: case.has_ai_result, timeout=WAIT_MS)
    window.actions_by_name["start_from_ai"].trigger()
    assert np.array_equal(case.mask, case.ai_mask)
    window.actions_by_name["clear_mask"].trigger()
    assert not case.mask.any()
    # Draw a closed ring with the brush, then fill its inside with one click.
    window.actions_by_name["mode_brush"].trigger()
    window.tools.brush_slider.setValue(0)
    viewport = window.canvas.viewport()
    ring = [viewport_point(window, 400 + 100 * np.sin(t), 400 + 100 * np.cos(t)) for t in np.linspace(0, 2 * np.pi, 40)]
    drag(viewport, ring)
    assert not case.mask[400, 400]
    window.actions_by_name["mode_fill"].trigger()
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, viewport_point(window, 400, 400))
    assert case.mask[400, 400] and not case.mask[200, 200]
    assert window.info.findings_box.values["Mask lesions"].text() == "1"

    QTest.keyClick(window, Qt.Key.Key_G)
    qtbot.waitUntil(lambda: window.canvas.heatmap_item.image is not None, timeout=WAIT_MS)
    heatmap = window.canvas.heatmap_item.image
    assert heatmap.shape == case.shape and 0 <= heatmap.min() and heatmap.max() <= 1
    assert window.canvas.colour_bar.isVisible()


def test_export_csv_and_png_then_import(qtbot, make_window, study_folder: Path, tmp_path: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    case.editor.begin_stroke()
    case.editor.paint([300, 320], [300, 340], 12)
    case.editor.end_stroke()  # corrected
    QTest.keyClick(window, Qt.Key.Key_J)
    rejected = window.controller.current_id
    QTest.keyClick(window, Qt.Key.Key_R)

    target = tmp_path / "out" / "annotations.csv"
    target.parent.mkdir()
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        window.controller.export_csv(target, RleConvention.ABSOLUTE)
    rows = read_annotation_rows(target)
    assert {image_id for image_id, _ in rows} == {case.image_id, rejected}
    assert (rejected, "-1") in rows
    masks = read_annotation_masks(target, case.shape, RleConvention.ABSOLUTE)
    assert np.array_equal(masks[case.image_id], case.mask)

    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        window.controller.export_pngs(tmp_path / "pngs")
    assert sorted(path.stem for path in (tmp_path / "pngs").glob("*.png")) == sorted([case.image_id, rejected])

    other = window.controller.session.cases[-1] if window.controller.session.cases[-1] is not case else window.controller.session.cases[0]
    imported = tmp_path / "import.csv"
    imported.write_text(f"ImageId,EncodedPixels\n{other.image_id},{1024 * 10 + 10} 20\n")
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        window.controller.import_csv(imported)
    qtbot.waitUntil(lambda: other.has_mask_pixels)
    assert other.mask.sum() == 20
    assert window.worklist_model.row(other.image_id).area_cm2 is None or other.status is ReviewStatus.UNREVIEWED


def test_a_second_window_on_the_same_folder_sees_the_edits(qtbot, make_window, study_folder: Path) -> None:
    first = make_window()
    open_and_wait(qtbot, first, study_folder)
    image_id = first.controller.current_id
    QTest.keyClick(first, Qt.Key.Key_B)
    viewport = first.canvas.viewport()
    start, end = viewport_point(first, 600, 600), viewport_point(first, 650, 650)
    drag(viewport, [start, end])
    edited = first.controller.session.case(image_id).mask.copy()
    assert edited.any()

    second = make_window()  # while the first is still open, as after a crash of the first
    open_and_wait(qtbot, second, study_folder)
    restored = second.controller.session.case(image_id)
    assert restored.status is ReviewStatus.CORRECTED and np.array_equal(restored.mask, edited)
    assert second.worklist_model.row(image_id).status == "corrected"


def test_edits_survive_a_sigkill(qtbot, make_window, study_folder: Path, random_checkpoint: Path, tmp_path: Path) -> None:
    """A real process is killed with SIGKILL right after an edit; reopening restores the edit."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from PySide6.QtCore import QTimer
        from pneumoviewer.model.inference import Predictor
        from pneumoviewer.review.case import ReviewStatus
        from pneumoviewer.ui.app import application
        from pneumoviewer.ui.main_window import MainWindow
        app = application()
        window = MainWindow(lambda: Predictor.cached(Path({str(random_checkpoint)!r})), Path({str(tmp_path / "sessions")!r}))
        window.setProperty("quiet", True)
        window.show()
        def edit():
            case = window.controller.session.case(window.controller.current_id)
            case.editor.begin_stroke(); case.editor.paint([200, 240], [200, 260], 10); case.editor.end_stroke()
            window.controller.set_status(ReviewStatus.CORRECTED)
            print("EDITED", case.image_id, int(case.mask.sum()), flush=True)
        window.controller.sigSessionOpened.connect(lambda: QTimer.singleShot(0, edit))
        window.controller.open_paths([Path({str(study_folder)!r})])
        app.exec()
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "xdg"))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert line.startswith("EDITED"), line
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(30)
    _, image_id, pixels = line.split()

    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(image_id)
    assert case.status is ReviewStatus.CORRECTED and int(case.mask.sum()) == int(pixels)


def test_the_ai_failing_to_load_leaves_viewing_and_editing_working(qtbot, make_window, study_folder: Path) -> None:
    def broken_model():
        raise RuntimeError("pneumoviewer/resources/models/default.safetensors: the model file is missing")

    window = make_window(broken_model)
    open_and_wait(qtbot, window, study_folder)
    qtbot.waitUntil(lambda: window.controller.model_queue.model_error is not None, timeout=WAIT_MS)
    assert window.status.ai_label.text() == "AI unavailable"
    assert "model file is missing" in window.status.ai_label.toolTip()
    assert window.info.findings_box.values["AI score"].text().startswith("not available: no AI model")
    QTest.keyClick(window, Qt.Key.Key_R)
    assert window.controller.session.case(window.controller.current_id).status is ReviewStatus.REJECTED


def test_cancel_stops_the_ai_sweep_and_predict_all_resumes_it(qtbot, make_window, study_folder: Path,
                                                              random_checkpoint: Path) -> None:
    window = make_window(lambda: SlowPredictor(random_checkpoint, delay_s=0.4))
    open_and_wait(qtbot, window, study_folder)
    with qtbot.waitSignal(window.controller.model_queue.sigPredicted, timeout=WAIT_MS):
        pass
    assert window.status.cancel_button.isVisible() and window.status.progress.isVisible()
    window.status.cancel_button.click()
    qtbot.waitUntil(lambda: not window.controller.model_queue.running, timeout=WAIT_MS)
    assert not window.controller.model_queue.pending()
    assert any(row.score is None for row in window.worklist_model.rows())
    qtbot.waitUntil(lambda: not window.status.progress.isVisible())
    QTest.keySequence(window, "Ctrl+P")
    wait_for_predictions(qtbot, window)


def test_overlay_opacity_and_brush_size_are_remembered(qtbot, make_window) -> None:
    first = make_window()
    first.tools.heatmap_overlay.slider.setValue(80)
    first.tools.brush_slider.setValue(2)
    first.actions_by_name["toggle_ai_contour"].setChecked(False)
    first.close()
    second = make_window()
    assert second.tools.heatmap_overlay.slider.value() == 80
    assert second.tools.brush_slider.value() == 2
    assert not second.actions_by_name["toggle_ai_contour"].isChecked()
    assert second.canvas.heatmap_item.opacity() == pytest.approx(0.8)


def test_an_image_that_cannot_be_decoded_says_why_in_place_of_the_image(qtbot, make_window, study_folder: Path,
                                                                         tmp_path: Path) -> None:
    folder = tmp_path / "damaged"
    folder.mkdir()
    source = next(path for path in sorted(study_folder.rglob("*.dcm")) if path.name != "broken.dcm")
    data = source.read_bytes()
    (folder / "damaged.dcm").write_bytes(data[: int(len(data) * 0.7)])  # header intact, pixels cut off
    window = make_window()
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        window.controller.open_paths([folder])
    qtbot.waitUntil(lambda: "cannot be shown" in window.case_view.placeholder.text(), timeout=WAIT_MS)
    assert "truncated or damaged" in window.case_view.placeholder.text()
    assert window.case_view.stack.currentWidget() is window.case_view.placeholder
    qtbot.waitUntil(lambda: window.worklist_model.rows()[0].error is not None, timeout=WAIT_MS)
    QTest.keyClick(window, Qt.Key.Key_R)  # the reader can still record a decision
    assert window.controller.session.cases[0].status is ReviewStatus.REJECTED
