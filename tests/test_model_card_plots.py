"""Help → About the AI model: the card's plots (training history, operating points, calibration)."""

from __future__ import annotations

import json

import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtWidgets import QDialog

from pneumoviewer.model.calibration import fit_calibration
from pneumoviewer.paths import default_model_path
from pneumoviewer.reports.model_facts import card_curves, operating_points
from pneumoviewer.ui.model_card_plots import ModelCardPlots

make_window = ui_driver.make_window  # fixture
BUNDLED_CARD = default_model_path().with_suffix(".json")


@pytest.fixture(scope="module")
def bundled_card() -> dict:
    """The bundled card as an older model's: no calibration, operating points or curve (whatever it has now)."""
    card = json.loads(BUNDLED_CARD.read_text())
    return {key: value for key, value in card.items()
            if key not in ("calibration", "operating_points", "operating_curve")}


def test_an_older_card_draws_its_history_and_says_what_it_lacks(bundled_card: dict) -> None:
    curves = card_curves(bundled_card)
    history = bundled_card["training"]["history"]
    assert curves.epochs == [float(entry["epoch"]) for entry in history]
    assert curves.history["roc_auc"] == [entry["roc_auc"] for entry in history]
    assert set(curves.points) == {"challenge"}  # an older card: no triage point
    assert "triage" not in operating_points(bundled_card)
    assert curves.points["challenge"] == pytest.approx((1 - bundled_card["metrics"]["specificity"],
                                                        bundled_card["metrics"]["sensitivity"]))
    assert curves.notes["calibration"] == "this card has no calibration: its score is not a probability"


def test_a_calibrated_card_with_two_points_draws_them_all(bundled_card: dict) -> None:
    card = dict(bundled_card)
    card["calibration"] = fit_calibration([0.1, 0.5, 0.9, 0.95], [0, 0, 1, 1]).to_card()
    card["operating_points"] = {"triage": {"threshold": 0.6, "sensitivity": 0.9, "specificity": 0.55},
                                "challenge": {"threshold": 0.95, "sensitivity": 0.34, "specificity": 0.99}}
    card["operating_curve"] = [[0.95, 0.34, 0.99], [0.6, 0.9, 0.55], [0.1, 1.0, 0.0]]
    curves = card_curves(card)
    assert set(curves.points) == {"triage", "challenge"} and len(curves.operating_curve) == 3
    assert curves.calibration[0][0] == 0 and curves.calibration[-1][0] == 1
    assert [p for _, p in curves.calibration] == sorted(p for _, p in curves.calibration)  # monotone
    assert "calibration" not in curves.notes and "operating" not in curves.notes
    assert ModelCardPlots(card).notes == {}


def test_help_menu_shows_the_loaded_models_plots(qtbot, make_window, monkeypatch: pytest.MonkeyPatch) -> None:
    window = make_window()
    qtbot.waitUntil(lambda: window.controller.model_queue.model_card is not None, timeout=ui_driver.WAIT_MS)
    shown = []
    monkeypatch.setattr(QDialog, "exec", lambda dialog: shown.append(dialog) or 0)
    help_menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&Help")
    next(action for action in help_menu.actions() if action.objectName() == "about_model").trigger()
    (dialog,) = shown
    plots = dialog.plots
    assert [item.titleLabel.text.split("<br>")[0] for item in plots.ci.items] == [
        "Validation by epoch", "Operating points", "Calibration"]
    assert plots.notes["history"] == "this card records no training history"  # the test model's card
    assert "no calibration" in plots.notes["calibration"]
