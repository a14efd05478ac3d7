"""Improve the AI from my reviews, driven as a reader would: the dialog, the training process, the gate,
promotion, the AI models dialog; and the training process killed mid-run."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import ui_driver  # tests/ui_driver.py
from conftest import write_labels_subset
from PySide6.QtWidgets import QMessageBox
from ui_driver import WAIT_MS, open_and_wait, wait_for_predictions

from pneumoviewer.io.annotations import read_annotation_masks
from pneumoviewer.model.versions import BUNDLED, ModelRegistry
from pneumoviewer.paths import default_model_path
from pneumoviewer.review.case import ReviewStatus

make_window = ui_driver.make_window  # fixture

PROCESS_MS = 240_000  # the training process: torch's import, 40 films read, a short budget, the gate
FAST = ["--no-rehearsal", "--no-forgetting", "--threads", "1"]


@pytest.fixture(scope="module")
def reviewed_folder(tmp_path_factory: pytest.TempPathFactory, siim_dir: Path, siim_labels_csv: Path) -> Path:
    """40 real SIIM films (12 with a pneumothorax) to review, and their labels beside them as labels.csv."""
    folder = tmp_path_factory.mktemp("site")
    chosen = write_labels_subset(siim_labels_csv, folder.parent / f"{folder.name}-labels.csv", 12, 28)
    files = {path.stem: path for path in (siim_dir / "dicom-images").rglob("*.dcm")}
    for image_id in chosen:
        shutil.copyfile(files[image_id], folder / f"{image_id}.dcm")
    return folder


def review_everything(window, folder: Path) -> None:
    """The reader's work: the true lesions drawn (corrected), the other films rejected."""
    masks = read_annotation_masks(folder.parent / f"{folder.name}-labels.csv")
    session = window.controller.session
    for case in session.cases:
        mask = masks[case.image_id]
        if mask.any():
            case.load_mask(mask)
            case.set_status(ReviewStatus.CORRECTED)
        else:
            case.set_status(ReviewStatus.REJECTED)


def open_dialog(qtbot, window):
    window.actions_by_name["improve_ai"].trigger()
    dialog = window.finetune_dialog
    qtbot.waitUntil(lambda: dialog.cases is not None, timeout=WAIT_MS)
    dialog.extra_arguments = FAST
    return dialog


def test_too_few_reviews_the_dialog_says_what_is_missing(qtbot, make_window, reviewed_folder: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, reviewed_folder)
    for case in window.controller.session.cases[:3]:
        case.set_status(ReviewStatus.REJECTED)
    dialog = open_dialog(qtbot, window)
    assert "Needs 27 more reviewed cases (3 of 30) and 5 more with a pneumothorax marked" in dialog.found.text()
    assert not dialog.start_button.isEnabled()


def test_fine_tune_gate_promote_and_switch_back(qtbot, make_window, reviewed_folder: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    open_and_wait(qtbot, window, reviewed_folder)
    wait_for_predictions(qtbot, window)
    review_everything(window, reviewed_folder)
    dialog = open_dialog(qtbot, window)
    assert "40 reviewed cases can teach the AI, 12 of them with a pneumothorax" in dialog.found.text()
    assert dialog.start_button.isEnabled()
    dialog.budget.addItem("3 seconds", 0.05)
    dialog.budget.setCurrentIndex(dialog.budget.count() - 1)
    with qtbot.waitSignal(dialog.runner.sigFinished, timeout=PROCESS_MS):
        dialog.start_button.click()
        qtbot.waitUntil(lambda: dialog.cancel_button.isEnabled(), timeout=WAIT_MS)
    assert dialog.progress.value() == 100
    assert dialog.table.isVisible() and dialog.table.rowCount() == 5
    labels = [dialog.table.item(row, 0).text() for row in range(5)]
    assert labels == ["cases (with pneumothorax)", "challenge score", "AUC", "sensitivity at the triage point",
                      "specificity at the triage point"]
    assert dialog.table.item(0, 1).text() == dialog.table.item(0, 2).text() == "10 (3)"
    decision = dialog.summary["gate"]["decision"]
    assert f"The candidate is <b>{decision}</b>" in dialog.decision.text()
    assert "too small to tell" in dialog.decision.text()
    if decision == "worse":  # promoting a worse model takes a second confirmation
        assert dialog.promote_anyway_button.isVisible() and not dialog.promote_button.isVisible()
        monkeypatch.setattr(QMessageBox, "question", lambda *args: QMessageBox.StandardButton.Yes)
        dialog.promote_anyway_button.click()
    else:
        assert dialog.promote_button.isVisible()
        dialog.promote_button.click()
    registry = ModelRegistry(tmp_path / "sessions")
    active = registry.active()
    assert active.name == dialog.promoted == "site-001"
    assert active.weights.is_file() and not Path(dialog.summary["model"]).parent.exists()  # the job's scratch went
    assert window.controller.model_checkpoint == active.weights
    # The worklist is scored again by the promoted model, and the findings panel names it.
    qtbot.waitUntil(lambda: window.info.value("AI model").startswith("site-001"), timeout=WAIT_MS)
    assert all(case.status.is_done for case in window.controller.session.cases)  # the reviews are untouched

    versions = _versions_dialog(window)
    assert versions.table.rowCount() == 2 and versions.table.item(1, 1).text() == "✓"
    assert versions.table.item(1, 3).text() == "30 reviewed cases"
    versions.roll_back_button.click()
    assert registry.active().name == BUNDLED
    assert window.controller.model_checkpoint == default_model_path()
    versions.use("site-001")
    assert registry.active().name == "site-001" and window.controller.model_checkpoint == active.weights


def _versions_dialog(window):
    from pneumoviewer.ui.finetune_dialog import ModelVersionsDialog

    return ModelVersionsDialog(window.controller, window)


def test_the_training_process_killed_loses_nothing_and_says_so(qtbot, make_window, reviewed_folder: Path,
                                                              tmp_path: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, reviewed_folder)
    review_everything(window, reviewed_folder)
    dialog = open_dialog(qtbot, window)
    dialog.budget.setCurrentIndex(0)  # 2 minutes: it is killed long before
    dialog.start_button.click()
    qtbot.waitUntil(lambda: "Training" in dialog.state.text(), timeout=PROCESS_MS)
    with qtbot.waitSignal(dialog.runner.sigFailed, timeout=WAIT_MS) as failed:
        os.kill(dialog.runner.pid(), signal.SIGKILL)
    assert "stopped unexpectedly" in failed.args[0] and "your reviews are untouched" in failed.args[0]
    assert dialog.state.text() == failed.args[0]
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert ModelRegistry(tmp_path / "sessions").active().name == BUNDLED
    session = window.controller.session
    assert session.done_count == 40 and not session.has_unsaved_changes
    window.controller.step_case(+1)  # the window still works
    assert window.controller.current_case() is not None


def test_a_candidate_not_promoted_is_removed_when_the_next_fine_tuning_starts(
    qtbot, make_window, reviewed_folder: Path
) -> None:
    window = make_window()
    open_and_wait(qtbot, window, reviewed_folder)
    review_everything(window, reviewed_folder)
    dialog = open_dialog(qtbot, window)
    dialog.budget.addItem("3 seconds", 0.05)
    dialog.budget.setCurrentIndex(dialog.budget.count() - 1)
    with qtbot.waitSignal(dialog.runner.sigFinished, timeout=PROCESS_MS):
        dialog.start_button.click()
    first_job = Path(dialog.summary["model"]).parent
    assert (first_job / "model.safetensors").is_file()
    dialog.close()
    qtbot.wait(1100)  # job folders are named by the second
    dialog = open_dialog(qtbot, window)  # reopened: a new job; the first candidate is still shown
    assert dialog.job != first_job and first_job.is_dir()
    with qtbot.waitSignal(dialog.runner.sigFinished, timeout=PROCESS_MS):
        dialog.start_button.click()  # starting again discards the candidate nobody promoted
        assert not first_job.exists()
    assert (dialog.job / "model.safetensors").is_file() and (first_job.parent / "cache").is_dir()
