"""A long worklist driven as a reader does: a folder of links to hundreds of real SIIM files under new
names; rows appear while it is indexed, the status filter and the column headers reorder it, and the
case the reader picked stays picked through all of that. (Its speed on 10,000 studies is measured in
benchmarks/bench_large_folder.py, not here.)"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolButton
from ui_driver import WAIT_MS

from pneumoviewer.ui.worklist import COLUMNS, SCORE_COLUMN

make_window = ui_driver.make_window  # fixture
LINKS = 240
AGE_COLUMN = COLUMNS.index("Age")


@pytest.fixture(scope="module")
def linked_folder(tmp_path_factory: pytest.TempPathFactory, siim_dir: Path) -> Path:
    """LINKS symbolic links to distinct real SIIM DICOMs, renamed and spread over series folders."""
    sources = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:LINKS]
    folder = tmp_path_factory.mktemp("linked")
    for number, source in enumerate(sources):
        link = folder / f"series{number // 100:03d}" / f"study{number:05d}.dcm"
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(source)
    return folder


def _shown(window) -> list[str]:
    model = window.worklist_model
    return [model.image_id_at(row) for row in range(model.rowCount())]


def _selected(window) -> str | None:
    rows = window.worklist.selectionModel().selectedRows()
    return window.worklist_model.image_id_at(rows[0].row()) if rows else None


def _click_row(window, image_id: str) -> None:
    table, model = window.worklist, window.worklist_model
    index = model.index(model.row_of(image_id), 0)
    table.scrollTo(index)
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     table.visualRect(index).center())


def _click_header(window, column: int) -> None:
    header = window.worklist.horizontalHeader()
    point = header.rect().center()
    point.setX(header.sectionViewportPosition(column) + header.sectionSize(column) // 2)
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)


def test_rows_appear_while_the_folder_is_indexed_and_the_picked_row_stays_picked(
        qtbot, make_window, linked_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pneumoviewer.io import dicom

    read_header, headers_read = dicom.read_header, []
    gates = {60: threading.Event(), 150: threading.Event()}  # a slow share: the scan stalls twice

    def slowed(path):
        gate = gates.get(len(headers_read))
        if gate is not None:
            gate.wait(30)
        metadata = read_header(path)
        headers_read.append(path)
        return metadata

    monkeypatch.setattr(dicom, "read_header", slowed)
    window = make_window()
    model = window.worklist_model
    insertions = []
    model.rowsInserted.connect(lambda _parent, first, last: insertions.append(last - first + 1))
    window.controller.open_paths([linked_folder])
    qtbot.waitUntil(lambda: model.total_count == 60, timeout=WAIT_MS)
    assert window.controller.session is None  # still indexing
    assert [row.display_id for row in model.rows()] == [f"Case {number:04d}" for number in range(1, 61)]
    _click_header(window, 0)  # by case number
    descending = model.sort_order == (0, Qt.SortOrder.DescendingOrder)
    picked = _shown(window)[10]
    _click_row(window, picked)
    assert _selected(window) == picked
    gates[60].set()
    qtbot.waitUntil(lambda: model.total_count == 150, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: _shown(window) == sorted(_shown(window), reverse=descending,
                                                     key=lambda image_id: model.row(image_id).display_id),
                    timeout=WAIT_MS)  # the new rows took their sorted place
    assert _selected(window) == picked
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        gates[150].set()
    assert model.total_count == model.rowCount() == LINKS
    assert sum(insertions) == LINKS and len(insertions) >= 3  # in batches, not one row at a time
    assert window.controller.current_id == picked and _selected(window) == picked


def test_filtering_by_status_and_sorting_keep_the_case_on_screen_selected(qtbot, make_window,
                                                                          linked_folder: Path) -> None:
    window = make_window()
    ui_driver.open_and_wait(qtbot, window, linked_folder)
    model, controller = window.worklist_model, window.controller
    buttons = {status: window.findChild(QToolButton, f"status-button-{status}") for status in ("accepted", "rejected")}
    accepted = controller.current_id
    QTest.mouseClick(buttons["accepted"], Qt.MouseButton.LeftButton)
    rejected = _shown(window)[LINKS // 2]
    _click_row(window, rejected)
    qtbot.waitUntil(lambda: controller.current_id == rejected)
    QTest.mouseClick(buttons["rejected"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: model.row(rejected).status == "rejected" and model.row(accepted).status == "accepted")

    status_filter = window.panels.status_filter
    status_filter.setCurrentText("Done")
    assert sorted(_shown(window)) == sorted([accepted, rejected])
    assert _selected(window) == rejected
    status_filter.setCurrentText("Rejected (no pneumothorax)")
    assert _shown(window) == [rejected] and _selected(window) == rejected
    status_filter.setCurrentText("To review")
    assert len(_shown(window)) == LINKS - 2 and rejected not in _shown(window) and _selected(window) is None
    QTest.keyClick(window.worklist, Qt.Key.Key_Down)  # the keys step through the filtered list
    stepped = controller.current_id
    assert stepped not in (accepted, rejected) and model.row(stepped).status == "unreviewed"
    status_filter.setCurrentText("All cases")
    assert len(_shown(window)) == LINKS and _selected(window) == stepped

    qtbot.waitUntil(lambda: sum(row.score is not None for row in model.rows()) >= 4, timeout=WAIT_MS)
    _click_header(window, SCORE_COLUMN)
    _click_header(window, SCORE_COLUMN)  # the AI column twice: back to the likeliest first
    assert model.sort_order == (SCORE_COLUMN, Qt.SortOrder.DescendingOrder)
    model.resort()  # scores arriving meanwhile reorder the list a moment later; look at one order
    scores = [model.row(image_id).score for image_id in _shown(window)]
    scored = [score for score in scores if score is not None]
    assert scored == sorted(scored, reverse=True) and scores[:len(scored)] == scored  # unscored at the bottom
    assert _selected(window) == stepped
    _click_header(window, AGE_COLUMN)
    ages = [model.row(image_id).age for image_id in _shown(window)]
    numbers = [int("".join(ch for ch in age if ch.isdigit())) for age in ages if any(ch.isdigit() for ch in age)]
    assert numbers == sorted(numbers) and _selected(window) == stepped
    assert sorted(_shown(window)) == sorted(row.image_id for row in model.rows())  # every row, once


def test_the_worklist_model_answers_qt_consistently_while_filtered(qtbot, qtmodeltester, make_window,
                                                                  linked_folder: Path) -> None:
    window = make_window()
    ui_driver.open_and_wait(qtbot, window, linked_folder)
    model = window.worklist_model
    qtmodeltester.check(model, force_py=True)  # it keeps watching: each change below is checked too
    QTest.mouseClick(window.findChild(QToolButton, "status-button-accepted"), Qt.MouseButton.LeftButton)
    window.panels.status_filter.setCurrentText("To review")
    qtbot.waitUntil(lambda: model.rowCount() == LINKS - 1)
    _click_header(window, AGE_COLUMN)
    window.panels.status_filter.setCurrentText("Accepted")
    assert model.rowCount() == 1
    assert model.data(model.index(0, 0)) == model.row(model.image_id_at(0)).display_id
    assert not model.index(model.rowCount(), 0).isValid() and not model.index(0, len(COLUMNS)).isValid()
