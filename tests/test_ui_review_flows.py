"""The window as a reader and an annotator drive it: zoom and pan, overlay keys and sliders, eraser and
per-case undo, status buttons and filters, export through its dialog, import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
)
from skimage.io import imread
from ui_driver import (
    NEGATIVES,
    POSITIVES,
    WAIT_MS,
    drag,
    open_and_wait,
    paint,
    viewport_point,
)

from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.rle import RleConvention
from pneumoviewer.review.case import ReviewStatus

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder


def view_width(window) -> float:
    (x0, x1), _ = window.canvas.view.viewRange()
    return x1 - x0


def wheel(viewport, point: QPoint, clicks: int) -> None:
    """Turn the mouse wheel over `point` (positive = away from the user = zoom in)."""
    event = QWheelEvent(
        QPointF(point), QPointF(viewport.mapToGlobal(point)), QPoint(0, 0), QPoint(0, 120 * clicks),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(viewport, event)


def drag_slider(slider, x: int) -> None:
    """Press on the slider's handle and drag it to `x` (in the slider's own coordinates)."""
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    handle = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                           QStyle.SubControl.SC_SliderHandle, slider).center()
    target = QPoint(x, handle.y())
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, handle)
    QTest.mouseMove(slider, target)
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, target)


def test_wheel_zoom_middle_drag_pan_fit_and_window_presets(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    canvas = window.canvas
    viewport = canvas.viewport()
    fitted = view_width(window)
    wheel(viewport, viewport_point(window, 512, 512), 3)
    qtbot.waitUntil(lambda: view_width(window) < fitted * 0.9)
    zoomed_range = canvas.view.viewRange()
    drag(viewport, [viewport_point(window, 500, 500), viewport_point(window, 500, 560)], Qt.MouseButton.MiddleButton)
    (x0, _), _ = canvas.view.viewRange()
    assert x0 < zoomed_range[0][0]  # dragging the film right shows more of its left side
    QTest.keyClick(window, Qt.Key.Key_0)  # fit
    assert view_width(window) == pytest.approx(fitted, rel=0.02)

    raw = window.controller.images.get(window.controller.current_id).raw
    default = canvas.window
    QTest.keyClick(window, Qt.Key.Key_2)
    assert canvas.window == pytest.approx(((raw.min() + raw.max()) / 2, raw.max() - raw.min()))
    QTest.keyClick(window, Qt.Key.Key_3)
    assert canvas.window == pytest.approx((default[0], default[1] / 2))
    QTest.keyClick(window, Qt.Key.Key_4)
    assert canvas.window == pytest.approx((default[0], default[1] * 2))
    QTest.keyClick(window, Qt.Key.Key_1)
    # W/L mode: a left drag to the left narrows the window (the right button does this in any mode).
    QTest.keyClick(window, Qt.Key.Key_W)
    drag(viewport, [viewport_point(window, 500, 600), viewport_point(window, 500, 400)])
    assert canvas.window[1] < default[1]
    assert window.status.window_label.text() == f"W {canvas.window[1]:.0f}  L {canvas.window[0]:.0f}"


def test_overlay_keys_contour_and_opacity_sliders(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    qtbot.waitUntil(lambda: case.has_ai_result, timeout=WAIT_MS)
    assert case.ai_mask is not None and case.ai_mask.sum() > 1000  # the test model marks a large region
    canvas = window.canvas

    def drawn_pixels() -> int:
        return int((canvas.ai_item.image[..., 3] > 0).sum())

    assert window.actions_by_name["toggle_ai_contour"].isChecked()
    contour = drawn_pixels()
    QTest.keyClick(window, Qt.Key.Key_O)  # fill
    assert drawn_pixels() == int(case.ai_mask.sum()) > contour
    QTest.keyClick(window, Qt.Key.Key_M)
    assert not canvas.ai_item.isVisible()
    QTest.keyClick(window, Qt.Key.Key_M)
    assert canvas.ai_item.isVisible()
    QTest.keyClick(window, Qt.Key.Key_N)
    assert not canvas.edit_item.isVisible()
    QTest.keyClick(window, Qt.Key.Key_N)
    assert canvas.edit_item.isVisible()

    # The opacity sliders, their handles dragged with the mouse.
    for control, item in ((window.tools.ai_overlay, canvas.ai_item), (window.tools.edit_overlay, canvas.edit_item),
                          (window.tools.heatmap_overlay, canvas.heatmap_item)):
        drag_slider(control.slider, 0)
        assert item.opacity() == 0
        drag_slider(control.slider, control.slider.width())
        assert item.opacity() == 1

    QTest.keyClick(window, Qt.Key.Key_G)
    qtbot.waitUntil(lambda: canvas.heatmap_item.image is not None, timeout=WAIT_MS)
    assert canvas.heatmap_item.isVisible() and canvas.colour_bar.isVisible()
    QTest.keyClick(window, Qt.Key.Key_G)
    assert not canvas.heatmap_item.isVisible() and not canvas.colour_bar.isVisible()


def test_lesion_count_and_area_in_square_centimetres(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    QTest.keyClick(window, Qt.Key.Key_B)
    paint(window, 300, (300, 400))
    paint(window, 700, (600, 700))  # a second, separate lesion
    assert window.info.findings_box.values["Mask lesions"].text() == "2"
    row_mm, col_mm = case.pixel_spacing_mm
    area_cm2 = case.mask.sum() * row_mm * col_mm / 100
    assert window.info.findings_box.values["Mask area"].text().startswith(f"{area_cm2:.2f} cm²")
    qtbot.waitUntil(lambda: window.worklist_model.row(case.image_id).area_cm2 == pytest.approx(area_cm2))


def test_eraser_keys_and_undo_history_per_case(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    first = window.controller.session.case(window.controller.current_id)
    QTest.keyClick(window, Qt.Key.Key_B)
    paint(window, 400, (300, 600))
    painted = first.mask.copy()
    QTest.keyClick(window, Qt.Key.Key_E)  # eraser, made small with its slider and bigger with "]"
    drag_slider(window.tools.brush_slider, 0)
    assert window.case_view.brush_radius == 2 and window.tools.brush_label.text() == "4 px"
    QTest.keyClick(window, Qt.Key.Key_BracketRight)
    QTest.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.case_view.brush_radius == 6
    paint(window, 400, (420, 480))
    assert first.mask[400, 320] and not first.mask[400, 450]
    erased = first.mask.copy()

    QTest.keyClick(window, Qt.Key.Key_J)  # the next case gets its own history
    qtbot.waitUntil(lambda: window.case_view.image_id_on_canvas == window.controller.current_id, timeout=WAIT_MS)
    second = window.controller.session.case(window.controller.current_id)
    QTest.keyClick(window, Qt.Key.Key_B)
    paint(window, 200, (200, 300))
    second_mask = second.mask.copy()
    QTest.keyClick(window, Qt.Key.Key_K)
    qtbot.waitUntil(lambda: window.case_view.image_id_on_canvas == first.image_id, timeout=WAIT_MS)
    QTest.keySequence(window, "Ctrl+Z")  # undoes the eraser stroke on the first case only
    assert np.array_equal(first.mask, painted) and np.array_equal(second.mask, second_mask)
    QTest.keySequence(window, "Ctrl+Shift+Z")
    assert np.array_equal(first.mask, erased)
    assert window.canvas.edit_item.image[400, 450, 3] == 0 and window.canvas.edit_item.image[400, 320, 3] == 255

    QTest.keySequence(window, "Ctrl+Backspace")  # clear
    assert not first.mask.any()
    qtbot.waitUntil(lambda: first.has_ai_result, timeout=WAIT_MS)
    QTest.keySequence(window, "Ctrl+M")  # start from the AI mask
    assert np.array_equal(first.mask, first.ai_mask)
    QTest.keySequence(window, "Ctrl+Z")
    assert not first.mask.any()


def test_status_buttons_counter_and_filter(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    first = window.controller.session.case(window.controller.current_id)
    qtbot.waitUntil(lambda: first.has_ai_result, timeout=WAIT_MS)
    buttons = {status: window.findChild(QToolButton, f"status-button-{status}") for status in ("accepted", "rejected")}
    QTest.mouseClick(buttons["accepted"], Qt.MouseButton.LeftButton)
    assert first.status is ReviewStatus.ACCEPTED
    assert np.array_equal(first.mask, first.ai_mask)  # accepting adopts the AI's mask
    window.worklist.setFocus()
    QTest.keyClick(window.worklist, Qt.Key.Key_Down)  # next case from the worklist's own keys
    qtbot.waitUntil(lambda: window.controller.current_id != first.image_id)
    second = window.controller.current_id
    QTest.mouseClick(buttons["rejected"], Qt.MouseButton.LeftButton)
    assert window.controller.session.case(second).status is ReviewStatus.REJECTED
    total = POSITIVES + NEGATIVES
    assert window.panels.counter.text() == f"Done 2 / {total}  ·  accepted 1  corrected 0  rejected 1"
    qtbot.waitUntil(lambda: window.worklist_model.row(second).status == "rejected")
    window.panels.status_filter.setCurrentText("Done")
    assert {window.worklist_model.image_id_at(row) for row in range(2)} == {first.image_id, second}
    assert window.worklist_model.rowCount() == 2
    window.panels.status_filter.setCurrentText("Rejected (no pneumothorax)")
    assert window.worklist_model.rowCount() == 1
    window.panels.status_filter.setCurrentText("To review")
    assert window.worklist_model.rowCount() == total - 2


def _fill_export_dialog(path: Path, relative: bool, include_all: bool = False) -> None:
    """Answer the modal export dialog that is about to open, as a user would."""
    from pneumoviewer.ui.dialogs import ExportDialog

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, ExportDialog):
            QTimer.singleShot(20, answer)
            return
        dialog.path_edit.setText(str(path))
        dialog.convention.setCurrentIndex(0 if relative else 1)
        dialog.all_cases.setChecked(include_all)
        dialog.accept()

    QTimer.singleShot(0, answer)


def _choose_in_dialog(item: str) -> None:
    """Pick `item` in the list dialog that is about to open (the import's RLE convention)."""

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QInputDialog):
            QTimer.singleShot(20, answer)
            return
        dialog.setTextValue(item)
        dialog.accept()

    QTimer.singleShot(0, answer)


def press_after_dialog(qtbot, window, keys: str) -> None:
    """Keys for the window once it is active again (a window manager does this when a dialog closes; offscreen, we do)."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    QTest.keySequence(window, keys)


def test_export_dialog_csv_and_pngs_then_the_csv_reimports_identically(qtbot, make_window, study_folder: Path,
                                                                       tmp_path: Path, monkeypatch) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    QTest.keyClick(window, Qt.Key.Key_B)
    paint(window, 300, (300, 400))
    paint(window, 700, (600, 700))
    drawn = case.mask.copy()
    QTest.keyClick(window, Qt.Key.Key_J)
    rejected = window.controller.current_id
    QTest.keyClick(window, Qt.Key.Key_R)

    exported = tmp_path / "annotations.csv"
    _fill_export_dialog(exported, relative=True)
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        QTest.keySequence(window, "Ctrl+E")
    rows = read_annotation_rows(exported)
    assert [image_id for image_id, _ in rows].count(case.image_id) == 2  # one row per lesion
    assert (rejected, "-1") in rows and len(rows) == 3
    assert "Exported 2 images" in window.statusBar().currentMessage()

    _fill_export_dialog(tmp_path / "masks", relative=True)
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        press_after_dialog(qtbot, window, "Ctrl+Shift+E")
    png = imread(tmp_path / "masks" / f"{case.image_id}.png")
    assert np.array_equal(png > 0, drawn) and set(np.unique(png)) == {0, 255}
    assert not imread(tmp_path / "masks" / f"{rejected}.png").any()

    # Clear the mask, import the exported file: the same mask, and writing it again gives the same bytes.
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    QTest.keyClick(window, Qt.Key.Key_K)
    qtbot.waitUntil(lambda: window.case_view.image_id_on_canvas == case.image_id, timeout=WAIT_MS)
    QTest.keySequence(window, "Ctrl+Backspace")
    assert not case.mask.any()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(exported), ""))
    _choose_in_dialog("Relative (SIIM-ACR challenge)")
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        press_after_dialog(qtbot, window, "Ctrl+I")
    qtbot.waitUntil(lambda: np.array_equal(case.mask, drawn))
    assert window.canvas.edit_item.image[300, 350, 3] == 255  # and it is on screen
    again = tmp_path / "again.csv"
    _fill_export_dialog(again, relative=True)
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        press_after_dialog(qtbot, window, "Ctrl+E")
    assert again.read_bytes() == exported.read_bytes()
    absolute = tmp_path / "absolute.csv"
    _fill_export_dialog(absolute, relative=False)
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        press_after_dialog(qtbot, window, "Ctrl+E")
    from pneumoviewer.io.annotations import read_annotation_masks

    assert np.array_equal(read_annotation_masks(absolute, case.shape, RleConvention.ABSOLUTE)[case.image_id], drawn)
    assert absolute.read_bytes() != exported.read_bytes()
    # The absolute file, imported as absolute, gives the same mask back.
    press_after_dialog(qtbot, window, "Ctrl+Backspace")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(absolute), ""))
    _choose_in_dialog("Absolute, 1-based (most Kaggle formats)")
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        QTest.keySequence(window, "Ctrl+I")
    qtbot.waitUntil(lambda: np.array_equal(case.mask, drawn))


def test_edits_and_statuses_wait_while_an_import_writes_masks(qtbot, make_window, study_folder: Path,
                                                              tmp_path: Path) -> None:
    import threading

    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    csv_file = tmp_path / "reference.csv"
    csv_file.write_text(f"ImageId,EncodedPixels\n{case.image_id},{1024 * 100 + 100} 50\n")
    importing, finish = threading.Event(), threading.Event()
    real_import = window.controller.session.import_annotations

    def slow_import(*args, **kwargs):
        importing.set()
        finish.wait(30)
        return real_import(*args, **kwargs)

    window.controller.session.import_annotations = slow_import
    window.controller.import_csv(csv_file)
    qtbot.waitUntil(importing.is_set)
    QTest.keyClick(window, Qt.Key.Key_B)
    paint(window, 600, (500, 600))
    QTest.keyClick(window, Qt.Key.Key_A)
    assert not case.has_mask_pixels and case.status is ReviewStatus.UNREVIEWED
    assert "imported" in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        finish.set()
    qtbot.waitUntil(lambda: window.canvas.edit_item.image is not None and window.canvas.edit_item.image[100, 100, 3] == 255)
    assert case.mask.sum() == 50
    qtbot.waitUntil(lambda: not window.case_view.read_only)
    paint(window, 600, (500, 600))  # editing works again, on top of the imported mask
    assert case.mask[600, 550] and case.mask.sum() > 50
