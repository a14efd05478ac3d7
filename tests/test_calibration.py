"""Calibration (isotonic and Platt), operating points and the figures around them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pneumoviewer import metrics
from pneumoviewer.model.calibration import Calibration, fit_calibration
from pneumoviewer.model.card import ModelCard, load_card
from pneumoviewer.model.operating_points import OperatingPoint, OperatingPoints, flagged
from pneumoviewer.paths import default_model_path


def synthetic(count: int = 400, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Scores whose true probability is known: P(positive | s) = s**2."""
    generator = np.random.default_rng(seed)
    scores = generator.uniform(0, 1, count)
    return scores, generator.uniform(0, 1, count) < scores**2


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_is_monotone_and_near_the_truth(method: str) -> None:
    scores, labels = synthetic(2000)
    calibration = fit_calibration(scores, labels, method)
    grid = np.linspace(0, 1, 101)
    probabilities = calibration.probabilities(grid)
    assert np.all(np.diff(probabilities) >= 0)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    middle = (grid > 0.2) & (grid < 0.9)
    assert np.max(np.abs(probabilities[middle] - grid[middle] ** 2)) < 0.12
    assert calibration.fitted_on == 2000 and calibration.positives == int(labels.sum())
    # Calibrated probabilities score better than the raw score on data they were not fitted on.
    test_scores, test_labels = synthetic(2000, seed=2)
    assert (metrics.brier_score(calibration.probabilities(test_scores), test_labels)
            < metrics.brier_score(test_scores, test_labels))


def test_isotonic_pools_violators_and_interpolates() -> None:
    calibration = fit_calibration([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [False, True, False, False, True, True])
    # PAV pools (0.2 T, 0.3 F, 0.4 F) into one block of rate 1/3, shrunk to (1 + 1) / (3 + 2) = 0.4.
    assert calibration.knots[0] == (0.1, pytest.approx(1 / 3))  # (0 + 1) / (1 + 2)
    assert calibration.probability(0.3) == pytest.approx(0.4)
    assert calibration.probability(0.6) == pytest.approx(0.75)  # the block (0.5, 0.6): (2 + 1) / (2 + 2)
    assert calibration.probability(0.45) == pytest.approx((0.4 + 0.75) / 2)  # linear between blocks
    assert calibration.probability(-1.0) == calibration.probability(0.1)  # flat beyond the fitted range
    assert calibration.probability(2.0) == calibration.probability(0.6)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_card_round_trip(method: str) -> None:
    scores, labels = synthetic()
    calibration = fit_calibration(scores, labels, method)
    again = Calibration.from_card(json.loads(json.dumps(calibration.to_card())))
    assert np.allclose(again.probabilities(scores), calibration.probabilities(scores), atol=1e-5)


@pytest.mark.parametrize("bad", [
    {"method": "magic"}, {"method": "isotonic", "scores": [0.1, 0.2], "probabilities": [0.5]},
    {"method": "isotonic", "scores": [0.1, 0.2], "probabilities": [0.6, 0.5]}, {"method": "platt", "a": 1.0},
    {"method": "isotonic", "scores": [], "probabilities": []},
])
def test_malformed_calibration_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Calibration.from_card(bad)


def test_threshold_for_sensitivity_is_the_most_specific_reaching_it() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    actual = [True, False, True, True, False, True, False]
    assert metrics.threshold_for_sensitivity(scores, actual, 0.5) == 0.7  # 2 of 4 positives
    assert metrics.threshold_for_sensitivity(scores, actual, 0.51) == 0.6
    assert metrics.threshold_for_sensitivity(scores, actual, 1.0) == 0.4
    threshold = metrics.threshold_for_sensitivity(scores, actual, 0.75)
    sensitivity, _ = metrics.sensitivity_specificity(np.array(scores) >= threshold, actual)
    assert sensitivity >= 0.75
    with pytest.raises(ValueError):
        metrics.threshold_for_sensitivity([0.1], [False], 0.9)


def test_operating_curve_matches_the_calls() -> None:
    scores, labels = synthetic(300)
    curve = metrics.operating_curve(scores, labels)
    assert len(curve) == len(np.unique(scores[labels]))
    assert [p.threshold for p in curve] == sorted((p.threshold for p in curve), reverse=True)
    for point in curve[::17]:
        sensitivity, specificity = metrics.sensitivity_specificity(scores >= point.threshold, labels)
        assert (point.sensitivity, point.specificity) == (pytest.approx(sensitivity), pytest.approx(specificity))
    assert curve[-1].sensitivity == 1.0


def test_bootstrap_interval_covers_the_estimate_and_shrinks_with_more_images() -> None:
    scores, labels = synthetic(200)
    low, high = metrics.bootstrap_interval(lambda rows: metrics.roc_auc(scores[rows], labels[rows]), 200, 500)
    assert low < metrics.roc_auc(scores, labels) < high
    more_scores, more_labels = synthetic(2000)
    more = metrics.bootstrap_interval(lambda rows: metrics.roc_auc(more_scores[rows], more_labels[rows]), 2000, 200)
    assert more[1] - more[0] < high - low
    figures = metrics.call_figures(scores >= 0.5, labels, resamples=300)
    assert figures.sensitivity_interval[0] <= figures.sensitivity <= figures.sensitivity_interval[1]
    assert figures.specificity_interval[0] <= figures.specificity <= figures.specificity_interval[1]
    assert figures.called == int((scores >= 0.5).sum()) and figures.images == 200


def test_reliability_table_bins_and_counts() -> None:
    probabilities = [0.05, 0.07, 0.55, 0.95, 1.0]
    table = metrics.reliability_table(probabilities, [False, True, False, True, True], bins=10)
    assert len(table) == 10 and sum(entry.count for entry in table) == 5
    assert table[0].count == 2 and table[0].observed_rate == 0.5 and table[0].mean_predicted == pytest.approx(0.06)
    assert table[9].count == 2 and table[9].observed_rate == 1.0  # 1.0 falls in the last bin
    assert math.isnan(table[3].observed_rate) and table[3].count == 0
    assert metrics.expected_calibration_error(probabilities, [False, True, False, True, True]) == pytest.approx(
        (2 * 0.44 + 0.55 + 2 * 0.025) / 5)


def test_operating_points_from_an_old_card_keep_the_old_flag() -> None:
    points = OperatingPoints.from_card({"settings": {"presence_threshold": 0.95}})
    assert not points.measured and points.triage.threshold == 0.95 == points.challenge.threshold
    assert flagged(0.95, points.triage.threshold) and not flagged(0.9499, points.triage.threshold)


def test_operating_points_card_round_trip_and_choice() -> None:
    curve = (OperatingPoint(0.9, 0.5, 0.95), OperatingPoint(0.8, 0.8, 0.85), OperatingPoint(0.7, 0.92, 0.6))
    points = OperatingPoints(OperatingPoint(0.7, 0.92, 0.6), OperatingPoint(0.95, 0.34, 0.99), curve, True)
    again = OperatingPoints.from_card(json.loads(json.dumps(points.to_card())))
    assert again == points
    assert points.for_sensitivity(0.8) == curve[1] and points.for_sensitivity(0.99) == curve[2]
    assert points.nearest_on_curve(0.82) == curve[1]
    assert curve[1].label() == "sensitivity 0.80, specificity 0.85"


def test_card_keeps_fitted_entries_and_refuses_malformed_ones(tmp_path: Path) -> None:
    card = ModelCard()
    assert "calibration" not in card.to_dict()  # a card without them is written as before
    card.calibration = fit_calibration(*synthetic()).to_card()
    card.operating_points = {"triage": {"threshold": 0.8}, "challenge": {"threshold": 0.95}}
    again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))
    calibration, points = again.fitted()
    assert calibration is not None and points.triage.threshold == 0.8 and points.measured
    broken = {**card.to_dict(), "operating_points": {"triage": {"threshold": "high"}}}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(Exception, match="malformed"):
        load_card(path)


def test_bundled_card_is_calibrated_with_two_operating_points() -> None:
    card = json.loads(default_model_path().with_suffix(".json").read_text())
    calibration, points = ModelCard.from_dict(card).fitted()
    # Fitted on held-out predictions only, never on images a network trained on: a campaign's card on every
    # fold's held-out films (each predicted by the fold that never saw it), otherwise on its own split's.
    out_of_fold = card["metrics"].get("out_of_fold")
    held_out = out_of_fold["images"] if out_of_fold else len(card["training"]["split"]["validation_ids"])
    assert calibration is not None and calibration.fitted_on == held_out
    assert points.measured and points.triage.threshold < points.challenge.threshold
    # The triage threshold is the held-out films' threshold for sensitivity 0.90 (the curve, fitted on all of
    # them); the card's own sensitivity beside it is the cross-fitted estimate, which lands near it.
    assert card["operating_points"]["triage"]["target_sensitivity"] == 0.9
    assert points.nearest_on_curve(points.triage.threshold).sensitivity >= 0.9
    assert points.triage.sensitivity is not None and abs(points.triage.sensitivity - 0.9) < 0.05
    assert len(points.curve) >= 10
