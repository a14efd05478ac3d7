"""Case reports and worklist summaries (`pneumoviewer report`, Review → Save case report…): real text in
real PDFs (poppler's pdftotext reads it back), no patient identifiers, and missing parts explained."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtWidgets import QFileDialog
from ui_driver import WAIT_MS, open_and_wait

from pneumoviewer.cli import main

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder
PATIENT_NAME = "Reportable^Harriet"
PATIENT_ID = "PID-99887766"

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")


def pdf_text(path: Path) -> str:
    """The PDF's text layer, words joined by single spaces (lines wrap where the page is narrow)."""
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return " ".join(text.split())


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.fixture(autouse=True)
def private_user_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # the autosave stays in the test


@pytest.fixture(scope="module")
def named_folder(tmp_path_factory: pytest.TempPathFactory, study_folder: Path) -> Path:
    """The study folder's readable images with a patient's name and ID in their headers, and the broken file."""
    folder = tmp_path_factory.mktemp("named")
    for number, source in enumerate(sorted(study_folder.rglob("*.dcm"))):
        if source.name == "broken.dcm":
            shutil.copyfile(source, folder / source.name)
            continue
        dataset = pydicom.dcmread(source)
        dataset.PatientName, dataset.PatientID = PATIENT_NAME, PATIENT_ID
        dataset.save_as(folder / f"image-{number}.dcm")
    return folder


def test_report_command_writes_a_page_per_case_and_a_summary(named_folder: Path, tmp_path: Path,
                                                             random_checkpoint: Path, capsys) -> None:
    out = tmp_path / "reports"
    assert main(["report", str(named_folder), "--out", str(out), "--model", str(random_checkpoint)]) == 0
    printed = capsys.readouterr()
    assert "broken.dcm" in printed.err  # the unreadable file is named, the rest goes on
    cases = pdf_text(out / "case-reports.pdf")
    assert pdf_pages(out / "case-reports.pdf") == 5
    for number in range(1, 6):
        assert f"Case report: Case 000{number}" in cases
    assert cases.count("research tool, not a medical device") == 5
    assert "AI score: " in cases and "not a calibrated probability" in cases
    assert "No triage call: this model's card has no triage operating point." in cases
    assert "Review status" in cases and "not reviewed yet" in cases
    assert "Study (no identifiers)" in cases  # plain letters: no "fi" ligature in the text layer
    assert "Pixel spacing: 0.1" in cases and "View: P" in cases or "View: A" in cases
    summary = pdf_text(out / "worklist-summary.pdf")
    assert "Worklist summary" in summary and "broken.dcm" in summary and "(not in the report)" in summary
    for text in (cases, summary):
        assert "Reportable" not in text and "Harriet" not in text and PATIENT_ID not in text
        assert "1.2.276.0.7230010" not in text  # no UIDs either


def test_summary_lists_cases_in_triage_order(study_folder: Path, tmp_path: Path, random_checkpoint: Path) -> None:
    from pneumoviewer.review.opening import open_studies

    out = tmp_path / "reports"
    assert main(["report", str(study_folder), "--out", str(out), "--model", str(random_checkpoint)]) == 0
    # The command reads the folder as the app does; its scores are the random model's.
    from pneumoviewer.model.inference import Predictor

    predictor = Predictor.cached(random_checkpoint)
    session = open_studies([study_folder]).session
    from pneumoviewer.io.images import load_radiograph

    scores = {case.display_id: predictor.predict(load_radiograph(case.path).pixels).score for case in session.cases}
    expected = sorted(scores, key=lambda name: -scores[name])
    summary = pdf_text(out / "worklist-summary.pdf")
    positions = [summary.index(name) for name in expected]
    assert positions == sorted(positions)
    assert f"{scores[expected[0]]:.3f}" in summary


def test_png_pages_one_file_per_page(study_folder: Path, tmp_path: Path, random_checkpoint: Path) -> None:
    from PIL import Image

    out = tmp_path / "png"
    assert main(["report", str(study_folder / "study0"), "--out", str(out), "--model", str(random_checkpoint),
                 "--format", "png"]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["case-reports-1.png", "worklist-summary-1.png"]
    with Image.open(out / "case-reports-1.png") as page:
        assert page.size == (1240, 1754)  # A4 at 150 dpi


def test_a_folder_with_no_readable_image_still_gets_a_summary_saying_why(tmp_path: Path,
                                                                          random_checkpoint: Path) -> None:
    folder = tmp_path / "broken-only"
    folder.mkdir()
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"truncated")
    out = tmp_path / "reports"
    assert main(["report", str(folder), "--out", str(out), "--model", str(random_checkpoint)]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["worklist-summary.pdf"]
    summary = pdf_text(out / "worklist-summary.pdf")
    assert "No readable image: there is no case to list." in summary
    assert "broken.dcm" in summary


def test_without_ai_results_the_report_says_why(study_folder: Path, tmp_path: Path, random_checkpoint: Path) -> None:
    out = tmp_path / "reports"
    assert main(["report", str(study_folder / "study1"), "--out", str(out), "--model", str(random_checkpoint),
                 "--no-ai"]) == 0
    text = pdf_text(out / "case-reports.pdf")
    assert "AI: no result (--no-ai: no stored result of this model)" in text


def test_review_menu_saves_the_case_on_screen_as_a_pdf(qtbot, make_window, study_folder: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    case = window.controller.session.case(window.controller.current_id)
    qtbot.waitUntil(lambda: case.has_ai_result, timeout=WAIT_MS)
    window.controller.set_status("rejected")
    target = tmp_path / "case.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), "PDF (*.pdf)"))
    review_menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&Review")
    action = next(action for action in review_menu.actions() if action.objectName() == "save_case_report")
    with qtbot.waitSignal(window.reports.sigSaved, timeout=WAIT_MS):
        action.trigger()
    text = pdf_text(target)
    assert f"Case report: {case.display_id}" in text
    assert f"AI score: {case.ai_score:.3f}" in text
    assert "reviewed: no pneumothorax (AI result rejected)" in text
    assert "Report saved: case.pdf" in window.statusBar().currentMessage()

    summary = tmp_path / "summary.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(summary), "PDF (*.pdf)"))
    action = next(action for action in review_menu.actions() if action.objectName() == "save_worklist_report")
    with qtbot.waitSignal(window.reports.sigSaved, timeout=WAIT_MS):
        action.trigger()
    text = pdf_text(summary)
    assert all(f"Case 000{number}" in text for number in range(1, 6))
    assert "rejected" in text
