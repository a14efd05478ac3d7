"""Lesion boxes and labels on the film, and the lesion list: driven as a reader would (keys, menu, mouse)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import QRectF, Qt
from PySide6.QtTest import QTest
from ui_driver import WAIT_MS, open_and_wait, paint, viewport_point

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder


def _view_menu_action(window, name: str):
    menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&View")
    return next(action for action in menu.actions() if action.objectName() == name)


def test_drawn_lesions_get_boxes_labels_and_list_rows(qtbot, make_window, study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    QTest.keyClick(window, Qt.Key.Key_B)
    paint(window, 300, (250, 420))  # a wide lesion on the image's left half
    paint(window, 700, (700, 760))  # a small one on its right half
    overlay, listing = window.case_view.lesion_overlay, window.info.lesions_box
    qtbot.waitUntil(lambda: len([r for r in window.case_view.lesions if r.source.value == "reader"]) == 2)
    reader = [lesion for lesion in window.case_view.lesions if lesion.source.value == "reader"]
    assert [lesion.name for lesion in reader] == ["1", "2"]
    assert reader[0].area_px > reader[1].area_px
    assert sum(lesion.area_px for lesion in reader) == case.lesions().area_px
    assert case.view_position in ("AP", "PA")
    assert [lesion.side.value for lesion in reader] == ["right", "left"]  # PA/AP: patient's right on the left
    texts = [listing.table.item(row, 0).text() for row in range(listing.table.rowCount())]
    assert [t for t in texts if not t.startswith("AI")] == ["1", "2"]
    assert listing.table.item(texts.index("1"), 3).text() == "right"

    def labels_beside_their_boxes() -> None:
        window.canvas.viewport().repaint()
        transform = window.canvas.view.childGroup.sceneTransform() * window.canvas.viewportTransform()
        assert len(overlay.label_rects) == len(overlay.lesions)
        for lesion, label in zip(overlay.lesions, overlay.label_rects, strict=True):
            row0, row1, col0, col1 = lesion.box
            box = transform.mapRect(QRectF(col0, row0, col1 - col0, row1 - row0))
            assert not label.intersects(box), (lesion.name, label, box)

    labels_beside_their_boxes()
    sizes = [rect.size() for rect in overlay.label_rects]
    window.canvas.view.scaleBy((0.4, 0.4), window.canvas.view.viewRect().center())  # zoom in
    qtbot.wait(50)
    labels_beside_their_boxes()
    assert [rect.size() for rect in overlay.label_rects] == sizes  # screen pixels: the same size at any zoom

    # Hovering the second lesion selects its row.
    window.canvas.fit()
    qtbot.wait(50)
    QTest.mouseMove(window.canvas.viewport(), viewport_point(window, 700, 730))
    qtbot.waitUntil(lambda: getattr(window.case_view.hovered_lesion, "name", None) == "2")
    assert listing.table.item(listing.highlighted_row, 0).text() == "2"
    qtbot.wait(50)  # pyqtgraph drops a mouse move that follows the last one too closely (mouseRateLimit)
    QTest.mouseMove(window.canvas.viewport(), viewport_point(window, 20, 20))
    qtbot.waitUntil(lambda: listing.highlighted_row is None)

    # L (and View → Show lesion boxes and labels) hides and shows them.
    QTest.keyClick(window, Qt.Key.Key_L)
    assert not overlay.isVisible()
    _view_menu_action(window, "toggle_lesions").trigger()
    assert overlay.isVisible()


def test_ai_lesions_are_labelled_with_the_score_of_an_uncalibrated_model(qtbot, make_window,
                                                                         study_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    qtbot.waitUntil(lambda: case.has_ai_result, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: bool(window.case_view.lesions), timeout=WAIT_MS)  # the random model marks lesions
    ai = [lesion for lesion in window.case_view.lesions if lesion.source.value == "AI"]
    assert ai and np.all([lesion.name.startswith("AI ") for lesion in ai])
    assert window.case_view.lesion_overlay.labels[0].endswith(f"score {case.ai_score:.2f}")
