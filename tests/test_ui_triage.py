"""The worklist's red flag follows the triage point the reader picks; probabilities show where calibrated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QSlider, QStyle, QStyleOptionSlider
from ui_driver import open_and_wait, wait_for_predictions

from pneumoviewer.io.dicom import load_dicom
from pneumoviewer.model.calibration import fit_calibration
from pneumoviewer.model.inference import Predictor
from pneumoviewer.ui.worklist import SCORE_COLUMN

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder
RED = "#ff7b72"


@pytest.fixture(scope="module")
def calibrated(random_checkpoint: Path, study_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """The random model with a calibration and a 3-point operating curve set between its scores on the folder."""
    predictor = Predictor(random_checkpoint)
    scores = sorted((predictor.predict(load_dicom(path).pixels).score for path in study_folder.rglob("study*/*.dcm")),
                    reverse=True)
    assert len(set(scores)) == len(scores) == 5
    folder = tmp_path_factory.mktemp("calibrated-model")
    weights = folder / "calibrated.safetensors"
    shutil.copy(random_checkpoint, weights)
    card = json.loads(random_checkpoint.with_suffix(".json").read_text())
    card["calibration"] = fit_calibration([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], [0, 0, 1, 0, 1, 1]).to_card()
    curve = [[scores[0], 0.33, 0.95], [scores[2], 0.67, 0.7], [scores[4], 1.0, 0.2]]
    # The card's own triage point carries cross-fitted figures, which differ from the curve's at its threshold.
    card["operating_points"] = {"triage": {"threshold": scores[2], "sensitivity": 0.67, "specificity": 0.65},
                                "challenge": {"threshold": 0.0, "sensitivity": 1.0, "specificity": 0.0}}
    card["operating_curve"] = curve
    weights.with_suffix(".json").write_text(json.dumps(card))
    return weights, scores


def drag_slider(slider: QSlider, value: int) -> None:
    """Drag the slider's handle with the mouse to where `value` is on its groove."""
    option = QStyleOptionSlider()
    slider.initStyleOption(option)
    style = slider.style()
    handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, slider)
    groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderGroove, slider)
    span = groove.width() - handle.width()
    along = QStyle.sliderPositionFromValue(slider.minimum(), slider.maximum(), value, span)
    target = QPoint(groove.x() + handle.width() // 2 + along, handle.center().y())
    QTest.mousePress(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, handle.center())
    QTest.mouseMove(slider, target)
    QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, target)
    assert slider.value() == value


def red_rows(window) -> int:
    model = window.worklist_model
    colours = [model.data(model.index(row, SCORE_COLUMN), Qt.ItemDataRole.ForegroundRole)
               for row in range(model.rowCount())]
    return sum(1 for colour in colours if colour is not None and colour.name() == RED)


def test_reader_moves_the_triage_point_and_the_red_flags_follow_and_persist(
    qtbot, make_window, study_folder: Path, calibrated: tuple
) -> None:
    weights, scores = calibrated
    window = make_window(lambda: Predictor.cached(weights), weights)
    open_and_wait(qtbot, window, study_folder)
    wait_for_predictions(qtbot, window)
    panel = window.triage
    qtbot.waitUntil(panel.slider.isEnabled)
    # The card's triage point: the three highest scores flagged, the probability shown as a percentage.
    qtbot.waitUntil(lambda: red_rows(window) == 3)
    assert "sensitivity 0.67, specificity 0.65" in panel.label.text() and panel.slider.value() == 1
    model = window.worklist_model
    assert all(model.data(model.index(row, SCORE_COLUMN)).endswith("%") for row in range(model.rowCount()))
    case = window.controller.session.case(window.controller.current_id)
    probability_text = window.info.findings_box.values["AI probability"].text()
    assert probability_text.endswith("(calibrated on 6 held-out films)") and "%" in probability_text
    flagged = case.ai_score >= scores[2]
    assert window.info.findings_box.values["Triage"].text().startswith("flagged" if flagged else "not flagged")

    drag_slider(panel.slider, 0)  # the most specific point: one case flagged, at once
    assert red_rows(window) == 1
    assert "sensitivity 0.33, specificity 0.95" in panel.label.text()
    drag_slider(panel.slider, 2)  # the most sensitive point: every case
    assert red_rows(window) == 5
    triage_text = window.info.findings_box.values["Triage"].text()
    assert triage_text == "flagged: read first (sensitivity 1.00, specificity 0.20)"
    qtbot.mouseClick(panel.presets[0.80], Qt.MouseButton.LeftButton)  # preset: the first point reaching 0.80
    assert red_rows(window) == 5 and panel.slider.value() == 2
    drag_slider(panel.slider, 1)
    assert red_rows(window) == 3 and panel.slider.value() == 1
    window.close()

    # The pick (sensitivity 0.67) is remembered: a new window flags the same cases.
    again = make_window(lambda: Predictor.cached(weights), weights)
    open_and_wait(qtbot, again, study_folder)
    wait_for_predictions(qtbot, again)
    qtbot.waitUntil(lambda: again.triage.slider.value() == 1 and red_rows(again) == 3)
    qtbot.mouseClick(again.triage.presets[None], Qt.MouseButton.LeftButton)  # back to the model's default
    assert red_rows(again) == 3 and "sensitivity 0.67" in again.triage.label.text()


def test_uncalibrated_model_shows_its_score_and_flags_at_the_challenge_threshold(
    qtbot, make_window, study_folder: Path
) -> None:
    window = make_window()  # the random model: no calibration, no curve; challenge threshold 0
    open_and_wait(qtbot, window, study_folder)
    wait_for_predictions(qtbot, window)
    qtbot.waitUntil(lambda: red_rows(window) == 5)
    model = window.worklist_model
    assert not any(model.data(model.index(row, SCORE_COLUMN)).endswith("%") for row in range(model.rowCount()))
    assert window.info.findings_box.values["AI probability"].text() == "not calibrated for this model (see the score)"
    assert not window.triage.slider.isEnabled()
    assert "no triage curve" in window.triage.label.text()


def test_a_model_ranked_by_its_presence_head_sorts_by_it_and_shows_the_call_apart(
    qtbot, make_window, study_folder: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "head-triage.safetensors"
    shutil.copy(random_checkpoint, weights)
    card = json.loads(random_checkpoint.with_suffix(".json").read_text())
    card["settings"] = {**card.get("settings", {}), "triage_by_presence_head": True}
    weights.with_suffix(".json").write_text(json.dumps(card))
    window = make_window(lambda: Predictor.cached(weights), weights)
    open_and_wait(qtbot, window, study_folder)
    wait_for_predictions(qtbot, window)
    predictor = Predictor(weights)
    for case in window.controller.session.cases:  # the score the worklist sorts by is the head's probability
        prediction = predictor.predict(load_dicom(case.path).pixels)
        assert case.ai_score == pytest.approx(prediction.presence_probability, abs=1e-5)
        assert case.ai_positive == prediction.positive
    shown = window.controller.session.case(window.controller.current_id)
    text = window.info.findings_box.values["AI score"].text()
    call = "pneumothorax" if shown.ai_positive else "none"
    assert text == f"{shown.ai_score:.3f} (presence head); challenge rule: {call}"  # not compared with the gate's threshold
    window.close()
