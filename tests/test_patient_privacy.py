"""Patient identity never leaves the DICOM headers: not into logs, console output, saved or exported files, nor the window.

Real SIIM files get a distinctive PatientName, PatientID and PatientBirthDate (and some are damaged, so
error paths run too); a whole review (open, AI, Grad-CAM, edits, statuses, export, import) and the
headless commands then run with every logger at DEBUG, and everything they wrote or showed is searched.
The app writes no crash report file of its own: an uncaught error goes to stderr, which is captured here.
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import pydicom
import pytest
import ui_driver  # tests/ui_driver.py
from hostile_corpus import BIRTH_DATE, PATIENT_ID, PATIENT_NAME
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QLabel, QLineEdit, QListWidget, QWidget
from ui_driver import WAIT_MS

from pneumoviewer.cli import main
from pneumoviewer.io.rle import RleConvention
from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.ui.worklist import COLUMNS

make_window = ui_driver.make_window  # fixture
IDENTIFIERS = (PATIENT_NAME, PATIENT_ID, BIRTH_DATE, PATIENT_NAME.replace("^", " "), "Harriet")


@pytest.fixture(scope="module")
def identified_folder(tmp_path_factory: pytest.TempPathFactory, siim_dir: Path) -> Path:
    """Three whole radiographs, one with its pixels cut off, one cut inside the patient's name."""
    folder = tmp_path_factory.mktemp("identified")
    sources = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:4]
    for number, source in enumerate(sources):
        dataset = pydicom.dcmread(source)
        dataset.PatientName, dataset.PatientID, dataset.PatientBirthDate = PATIENT_NAME, PATIENT_ID, BIRTH_DATE
        dataset.save_as(folder / f"study-{number}.dcm")
    data = (folder / "study-3.dcm").read_bytes()
    (folder / "pixels-cut.dcm").write_bytes(data[: len(data) * 2 // 3])
    (folder / "name-cut.dcm").write_bytes(data[: data.index(PATIENT_NAME.encode()) + 6])
    (folder / "study-3.dcm").unlink()
    return folder


def leaks(text: str) -> list[str]:
    return [value for value in IDENTIFIERS if value in text]


def files_text(folder: Path) -> str:
    return "\n".join(path.read_bytes().decode("latin-1") for path in sorted(folder.rglob("*")) if path.is_file())


def window_text(window) -> str:
    """Every text the window shows or would show on hover: labels, buttons, fields, lists, table cells, tooltips."""
    texts = [window.windowTitle(), window.status.currentMessage()]
    for widget in window.findChildren(QWidget):
        texts.append(widget.toolTip())
        if isinstance(widget, (QLabel, QAbstractButton, QLineEdit)):
            texts.append(widget.text())
        if isinstance(widget, QListWidget):
            texts += [widget.item(row).text() for row in range(widget.count())]
    model = window.worklist_model
    for row in range(model.rowCount()):
        for column in range(model.columnCount()):
            for role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                texts.append(str(model.data(model.index(row, column), role) or ""))
    return "\n".join(texts)


def test_a_whole_review_leaves_no_patient_identity_anywhere(
    qtbot, make_window, identified_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd
) -> None:
    assert len(leaks(files_text(identified_folder))) == len(IDENTIFIERS) - 1  # the search finds them where they are
    caplog.set_level(logging.DEBUG)
    window = make_window()
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):  # its first case cannot be shown
        window.controller.open_paths([identified_folder])
    qtbot.waitUntil(lambda: all(row.score is not None or row.error for row in window.worklist_model.rows()),
                    timeout=WAIT_MS)
    shown = window_text(window)
    assert window.panels.unreadable_list.count() == 1  # the file cut inside the name: listed, by file name only
    window.actions_by_name["toggle_heatmap"].setChecked(True)
    for row in range(window.worklist_model.rowCount()):
        window.worklist.selectRow(row)
        image_id = window.worklist_model.image_id_at(row)
        qtbot.waitUntil(lambda image_id=image_id: window.controller.current_id == image_id, timeout=WAIT_MS)
        qtbot.wait(200)  # the image (or why it cannot be shown) and the Grad-CAM arrive
        shown += window_text(window) + window.case_view.placeholder.text()
        case = window.controller.session.case(image_id)
        case.editor.begin_stroke()
        case.editor.paint([200, 260], [300, 320], 10)
        case.editor.end_stroke()
        window.controller.set_status(ReviewStatus.ACCEPTED if row % 2 else ReviewStatus.REJECTED)
    exports = tmp_path / "exports"
    exports.mkdir()
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        window.controller.export_csv(exports / "annotations.csv", RleConvention.ABSOLUTE)
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        window.controller.export_pngs(exports / "masks")
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        window.controller.import_csv(exports / "annotations.csv", RleConvention.ABSOLUTE)
    shown += window_text(window)
    window.close()

    # The worklist is anonymised: "Case 0001"..., never a name or id from the header.
    first_column = [window.worklist_model.data(window.worklist_model.index(row, 0))
                    for row in range(window.worklist_model.rowCount())]
    assert COLUMNS[0] == "Case" and all(re.fullmatch(r"Case \d{4}", text) for text in first_column)
    output = capfd.readouterr()
    assert leaks(shown) == []
    assert leaks(caplog.text + "\n".join(record.getMessage() for record in caplog.records)) == []
    assert leaks(output.out + output.err) == []
    assert leaks(files_text(exports)) == [] and leaks(files_text(tmp_path / "sessions")) == []
    assert leaks(files_text(tmp_path / "xdg")) == []  # recent folders, preferences


def test_the_headless_commands_leave_no_patient_identity(
    identified_folder: Path, tmp_path: Path, random_checkpoint: Path, siim_labels_csv: Path,
    caplog: pytest.LogCaptureFixture, capfd,
) -> None:
    caplog.set_level(logging.DEBUG)
    images = tmp_path / "images"
    shutil.copytree(identified_folder, images)
    out = tmp_path / "out"
    assert main(["info", str(images / "study-0.dcm")]) == 0
    assert main(["info", str(images / "study-0.dcm"), "--json"]) == 0
    assert main(["info", str(images / "name-cut.dcm")]) == 1
    assert main(["predict", str(images), "--out", str(out / "masks.csv"), "--model", str(random_checkpoint),
                 "--cam-dir", str(out / "cams"), "--overlay-dir", str(out / "overlays")]) == 0
    main(["evaluate", "--labels", str(siim_labels_csv), "--images", str(images), "--model", str(random_checkpoint),
          "--json", str(out / "evaluation.json")])
    output = capfd.readouterr()
    assert "name-cut.dcm" in output.err  # the damaged file is reported, by its file name
    assert leaks(output.out + output.err) == []
    assert leaks(caplog.text) == []
    assert leaks(files_text(out)) == []
