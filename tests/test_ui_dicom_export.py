"""File → Export DICOM SEG…: the reviewed cases of the window as DICOM SEGs and burned-in overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import ui_driver  # tests/ui_driver.py
from dicom_validation import DCIODVFY, dciodvfy_errors  # tests/dicom_validation.py
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog
from ui_driver import WAIT_MS, open_and_wait, paint

from pneumoviewer.io.dicom_seg import read_seg_mask
from pneumoviewer.model.identity import model_fingerprint

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder


def _file_menu_action(window, name: str):
    file_menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&File")
    return next(action for action in file_menu.actions() if action.objectName() == name)


def test_export_dicom_seg_from_the_file_menu(qtbot, make_window, study_folder: Path, tmp_path: Path,
                                             random_checkpoint: Path, monkeypatch) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    session = window.controller.session
    corrected = session.case(window.controller.current_id)
    QTest.keyClick(window, Qt.Key.Key_B)
    paint(window, 300, (300, 400))
    drawn = corrected.mask.copy()
    QTest.keyClick(window, Qt.Key.Key_J)
    accepted = session.case(window.controller.current_id)
    qtbot.waitUntil(lambda: accepted.has_ai_result, timeout=WAIT_MS)
    QTest.keyClick(window, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: accepted.status.value == "accepted")
    folder = tmp_path / "pacs-out"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(folder))

    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        _file_menu_action(window, "export_dicom").trigger()

    assert sorted(path.name for path in folder.iterdir()) == sorted(
        f"{case.image_id}.{kind}.dcm" for case in (corrected, accepted) for kind in ("seg", "overlay"))
    np.testing.assert_array_equal(read_seg_mask(folder / f"{corrected.image_id}.seg.dcm", corrected.path), drawn)
    np.testing.assert_array_equal(read_seg_mask(folder / f"{accepted.image_id}.seg.dcm", accepted.path),
                                  accepted.export_mask())
    segment = pydicom.dcmread(folder / f"{accepted.image_id}.seg.dcm").SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert segment.SegmentationAlgorithmIdentificationSequence[0].AlgorithmVersion == \
        model_fingerprint(random_checkpoint)
    if DCIODVFY is not None:
        assert all(dciodvfy_errors(path) == [] for path in folder.iterdir())
    assert "Exported 2 images" in window.statusBar().currentMessage()
