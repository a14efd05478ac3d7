"""Fitting a model's calibration and triage point on held-out predictions, and saying honestly how good they are.

Input: one triage score, truth and challenge call per image, from images the model never trained
on (out-of-fold predictions of a campaign, or a held-out split evaluated by `pneumoviewer
evaluate --json`). Output:

- the card's entries (`card_entries`): the calibration, the two operating points and the operating
  curve, fitted on all the images given;
- their honest figures (`cross_fitted`): the images dealt into stratified folds, each fold's
  probabilities and triage flags computed by a calibration and a triage threshold fitted on the
  other folds only. The reliability table, Brier score and the triage point's sensitivity and
  specificity (with bootstrap intervals) reported from those are what a new image can expect;
  figures on the images the thresholds were fitted on would flatter them.

The card's triage entry records the threshold fitted on all images and the cross-fitted
sensitivity/specificity; the challenge entry records the challenge call's figures on the images
given (its settings were tuned elsewhere, e.g. out-of-fold by `tuning`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pneumoviewer import metrics
from pneumoviewer.model.calibration import METHODS, fit_calibration
from pneumoviewer.model.operating_points import DEFAULT_TRIAGE_SENSITIVITY, OperatingPoint, OperatingPoints


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold probabilities and triage flags of every image, and the figures they give."""

    probabilities: dict[str, np.ndarray]  # method -> [N] out-of-fold calibrated probabilities
    flagged: np.ndarray  # [N] out-of-fold triage flags
    thresholds: list[float]  # the triage threshold fitted for each fold (on the others)
    folds: int

    def brier(self, truth: np.ndarray) -> dict[str, float]:
        return {method: metrics.brier_score(values, truth) for method, values in self.probabilities.items()}

    def best_method(self, truth: np.ndarray) -> str:
        """The calibration method with the lower cross-fitted Brier score."""
        scores = self.brier(truth)
        return min(METHODS, key=lambda method: scores[method])


def stratified_folds(truth: np.ndarray, folds: int, seed: int = 2019) -> np.ndarray:
    """[N] fold number of each image: positives and negatives each permuted and dealt round-robin."""
    assignment = np.empty(truth.size, dtype=np.int64)
    generator = np.random.default_rng(seed)
    offset = 0
    for label in (True, False):
        members = generator.permutation(np.flatnonzero(truth == label))
        assignment[members] = (np.arange(members.size) + offset) % folds
        offset += members.size
    return assignment


def cross_fitted(
    scores: np.ndarray, truth: np.ndarray, folds: int = 5, sensitivity: float = DEFAULT_TRIAGE_SENSITIVITY,
    seed: int = 2019,
) -> CrossFit:
    """Calibrations (every method) and triage thresholds fitted on k-1 folds, applied to the k-th."""
    scores, truth = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=bool)
    fold_of = stratified_folds(truth, folds, seed)
    probabilities = {method: np.empty(scores.size) for method in METHODS}
    flags = np.zeros(scores.size, dtype=bool)
    thresholds = []
    for fold in range(folds):
        held_out, fitting = fold_of == fold, fold_of != fold
        for method in METHODS:
            calibration = fit_calibration(scores[fitting], truth[fitting], method)
            probabilities[method][held_out] = calibration.probabilities(scores[held_out])
        threshold = metrics.threshold_for_sensitivity(scores[fitting], truth[fitting], sensitivity)
        thresholds.append(threshold)
        flags[held_out] = scores[held_out] >= threshold
    return CrossFit(probabilities, flags, thresholds, folds)


def card_entries(
    scores: np.ndarray, truth: np.ndarray, challenge_called: np.ndarray, presence_threshold: float,
    method: str, sensitivity: float = DEFAULT_TRIAGE_SENSITIVITY, crossfit: CrossFit | None = None,
) -> dict[str, Any]:
    """The card's "calibration", "operating_points" and "operating_curve", fitted on all images given."""
    scores, truth = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=bool)
    calibration = fit_calibration(scores, truth, method)
    threshold = metrics.threshold_for_sensitivity(scores, truth, sensitivity)
    triage_calls = crossfit.flagged if crossfit is not None else scores >= threshold
    triage_figures = metrics.sensitivity_specificity(triage_calls, truth)
    challenge_figures = metrics.sensitivity_specificity(challenge_called, truth)
    curve = tuple(OperatingPoint(p.threshold, p.sensitivity, p.specificity)
                  for p in metrics.operating_curve(scores, truth))
    points = OperatingPoints(OperatingPoint(threshold, *triage_figures),
                             OperatingPoint(presence_threshold, *challenge_figures), curve, measured=True)
    entries = {"calibration": calibration.to_card(), **points.to_card()}
    entries["operating_points"]["triage"]["target_sensitivity"] = sensitivity
    return entries


def honest_report(
    scores: np.ndarray, truth: np.ndarray, challenge_called: np.ndarray, crossfit: CrossFit, method: str,
    resamples: int = 2000,
) -> dict[str, Any]:
    """The figures for docs/model.md: reliability tables and the operating-point table, cross-fitted."""
    scores, truth = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=bool)
    probabilities = crossfit.probabilities[method]
    triage = metrics.call_figures(crossfit.flagged, truth, resamples)
    challenge = metrics.call_figures(challenge_called, truth, resamples)
    return {
        "images": int(truth.size), "positives": int(truth.sum()), "folds": crossfit.folds, "method": method,
        "brier_crossfitted": crossfit.brier(truth),
        "brier_of_the_raw_score": metrics.brier_score(scores, truth),
        "ece_crossfitted": metrics.expected_calibration_error(probabilities, truth),
        "ece_of_the_raw_score": metrics.expected_calibration_error(scores, truth),
        "reliability_crossfitted": [asdict(entry) for entry in metrics.reliability_table(probabilities, truth)],
        "reliability_of_the_raw_score": [asdict(entry) for entry in metrics.reliability_table(scores, truth)],
        "triage_thresholds_per_fold": crossfit.thresholds,
        "triage_crossfitted": asdict(triage), "challenge": asdict(challenge),
        "roc_auc": metrics.roc_auc(scores, truth),
        "roc_auc_interval": metrics.bootstrap_interval(
            lambda rows: metrics.roc_auc(scores[rows], truth[rows]), truth.size, resamples),
    }


def markdown_tables(report: dict[str, Any]) -> str:
    """`honest_report`'s figures as the Markdown tables of docs/model.md (reliability, operating points)."""
    def interval(figure: dict[str, Any], name: str) -> str:
        low, high = figure[f"{name}_interval"]
        return f"{figure[name]:.2f} ({low:.2f}–{high:.2f})"

    lines = [
        f"Reliability, cross-fitted over {report['folds']} folds of {report['images']} images "
        f"({report['positives']} positive): each image's probability from the {report['method']} calibration "
        "fitted on the other folds",
        "",
        "| bin | images | mean calibrated probability | observed rate | | images | mean raw score | observed rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for calibrated, raw in zip(report["reliability_crossfitted"], report["reliability_of_the_raw_score"],
                               strict=True):
        def cells(entry: dict[str, Any]) -> str:
            if not entry["count"]:
                return "0 | — | —"
            return f"{entry['count']} | {entry['mean_predicted']:.3f} | {entry['observed_rate']:.3f}"

        lines.append(f"| {calibrated['low']:.1f}–{calibrated['high']:.1f} | {cells(calibrated)} | | {cells(raw)} |")
    brier = report["brier_crossfitted"]
    lines += [
        "",
        f"Brier score: raw score {report['brier_of_the_raw_score']:.4f}, "
        + ", ".join(f"{method} {value:.4f}" for method, value in brier.items())
        + f" (cross-fitted); expected calibration error: raw {report['ece_of_the_raw_score']:.3f}, "
        f"{report['method']} {report['ece_crossfitted']:.3f}.",
        "",
        "| operating point | threshold | sensitivity (95 % CI) | specificity (95 % CI) | flagged / called |",
        "|---|---|---|---|---|",
    ]
    card = report.get("card", {})
    triage, challenge = report["triage_crossfitted"], report["challenge"]
    triage_threshold = card.get("triage", {}).get("threshold", float("nan"))
    challenge_threshold = card.get("challenge", {}).get("threshold", float("nan"))
    lines.append(f"| triage (red flag), fitted for sensitivity {card.get('triage', {}).get('target_sensitivity', 0.9)}"
                 f" | {triage_threshold:.3f} (per fold {min(report['triage_thresholds_per_fold']):.3f}–"
                 f"{max(report['triage_thresholds_per_fold']):.3f}) | {interval(triage, 'sensitivity')} | "
                 f"{interval(triage, 'specificity')} | {triage['called']} / {triage['images']} |")
    lines.append(f"| challenge (masks, CSV) | {challenge_threshold:.3f} + lesion rule | "
                 f"{interval(challenge, 'sensitivity')} | {interval(challenge, 'specificity')} | "
                 f"{challenge['called']} / {challenge['images']} |")
    low, high = report["roc_auc_interval"]
    lines += ["", f"ROC AUC of the triage score {report['roc_auc']:.3f} (95 % CI {low:.3f}–{high:.3f})."]
    return "\n".join(lines)
