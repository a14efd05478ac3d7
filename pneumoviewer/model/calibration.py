"""From the triage score to a probability that means what it says: the model card's "calibration".

The triage score orders the worklist well but is no probability: v1 gives 0.95 to negatives and
0.96 to positives. A calibration maps the score, monotonically, to the share of films with a
pneumothorax among those scoring the same, fitted on predictions the model never trained on
(out-of-fold or a held-out split). Two methods:

- **isotonic** (default): pool-adjacent-violators over the sorted scores (numpy only), a
  non-decreasing step curve interpolated linearly between its blocks and flat beyond the
  fitted range. Each block's rate is shrunk by one pseudo-observation each way ((k + 1) / (n + 2)),
  so that a block of 20 negatives reads "about 5 %" rather than a certain 0 %, then made
  non-decreasing again.
- **platt**: a logistic curve on the score's logit, `1 / (1 + exp(-(a * logit(s) + b)))`, two
  parameters fitted by Newton's method: smoother, better with few points, cannot bend twice.

The card holds `{"method", "scores", "probabilities"}` (isotonic knots) or `{"method", "a", "b"}`
(platt), with `fitted_on` (how many images) and `positives`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = ("isotonic", "platt")
_LOGIT_EPSILON = 1e-6


@dataclass(frozen=True)
class Calibration:
    """A monotone map from triage score to probability of pneumothorax."""

    method: str
    knots: tuple[tuple[float, float], ...] = ()  # isotonic: (score, probability), scores non-decreasing
    slope: float = 1.0  # platt: a
    intercept: float = 0.0  # platt: b
    fitted_on: int = 0
    positives: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "isotonic":
            if not self.knots:
                raise ValueError("an isotonic calibration needs at least one knot")
            scores, probabilities = np.array(self.knots, dtype=np.float64).T
            if np.any(np.diff(scores) < 0) or np.any(np.diff(probabilities) < 0):
                raise ValueError("isotonic calibration knots must be non-decreasing in score and probability")
            if not (np.all(np.isfinite(scores)) and np.all((probabilities >= 0) & (probabilities <= 1))):
                raise ValueError("isotonic calibration probabilities must lie between 0 and 1")
        elif not (math.isfinite(self.slope) and math.isfinite(self.intercept)) or self.slope < 0:
            raise ValueError("a platt calibration needs a finite slope >= 0 and a finite intercept")

    def probability(self, score: float) -> float:
        """The calibrated probability of one triage score."""
        return float(self.probabilities([score])[0])

    def probabilities(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """The calibrated probabilities of many scores (float64 array)."""
        values = np.asarray(scores, dtype=np.float64)
        if self.method == "isotonic":
            knot_scores, knot_probabilities = np.array(self.knots, dtype=np.float64).T
            return np.interp(values, knot_scores, knot_probabilities)
        return _sigmoid(self.slope * _logit(values) + self.intercept)

    def to_card(self) -> dict[str, Any]:
        """The card's "calibration" value (plain JSON)."""
        card: dict[str, Any] = {"method": self.method}
        if self.method == "isotonic":
            card["scores"] = [score for score, _ in self.knots]  # unrounded: knots can be very close
            card["probabilities"] = [round(probability, 6) for _, probability in self.knots]
        else:
            card.update(a=round(self.slope, 6), b=round(self.intercept, 6))
        card.update(fitted_on=self.fitted_on, positives=self.positives)
        return card

    @classmethod
    def from_card(cls, values: Mapping[str, Any]) -> Calibration:
        """A calibration from the card's "calibration" value; ValueError naming what is wrong."""
        try:
            method = str(values["method"])
            fitted_on, positives = int(values.get("fitted_on", 0)), int(values.get("positives", 0))
            if method == "isotonic":
                scores, probabilities = list(values["scores"]), list(values["probabilities"])
                if len(scores) != len(probabilities):
                    raise ValueError("scores and probabilities differ in length")
                knots = tuple((float(s), float(p)) for s, p in zip(scores, probabilities, strict=True))
                return cls("isotonic", knots=knots, fitted_on=fitted_on, positives=positives)
            return cls(method, slope=float(values["a"]), intercept=float(values["b"]), fitted_on=fitted_on,
                       positives=positives)
        except (KeyError, TypeError) as error:
            raise ValueError(f"model card calibration is incomplete or malformed ({error})") from None


def fit_calibration(
    scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray, method: str = "isotonic"
) -> Calibration:
    """Fit a calibration of triage `scores` against the truth `labels` (True = pneumothorax)."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    truth = np.asarray(labels, dtype=bool).ravel()
    if values.shape != truth.shape:
        raise ValueError(f"{values.size} scores for {truth.size} labels")
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError("calibration needs at least one finite score")
    fitted_on, positives = int(values.size), int(truth.sum())
    if method == "isotonic":
        return Calibration("isotonic", knots=_isotonic_knots(values, truth), fitted_on=fitted_on, positives=positives)
    if method == "platt":
        slope, intercept = _platt(values, truth)
        return Calibration("platt", slope=slope, intercept=intercept, fitted_on=fitted_on, positives=positives)
    raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got {method!r}")


def _isotonic_knots(values: np.ndarray, truth: np.ndarray) -> tuple[tuple[float, float], ...]:
    unique, group = np.unique(values, return_inverse=True)
    weights = np.bincount(group).astype(np.float64)
    hits = np.bincount(group, weights=truth.astype(np.float64))
    # Pool adjacent violators: a stack of blocks (hits, weight, first and last unique score).
    blocks: list[tuple[float, float, float, float]] = []
    for index in range(unique.size):
        blocks.append((float(hits[index]), float(weights[index]), float(unique[index]), float(unique[index])))
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            newer, older = blocks.pop(), blocks.pop()
            blocks.append((older[0] + newer[0], older[1] + newer[1], older[2], newer[3]))
    rates = np.maximum.accumulate([(k + 1.0) / (n + 2.0) for k, n, _, _ in blocks])
    knots: list[tuple[float, float]] = []
    for (_, _, first, last), rate in zip(blocks, rates, strict=True):
        knots.append((float(first), float(rate)))
        if last > first:
            knots.append((float(last), float(rate)))
    return tuple(knots)


def _platt(values: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(a, b) of the logistic fit on logit(score), by Newton's method with Platt's target smoothing."""
    positives, negatives = int(truth.sum()), int((~truth).sum())
    targets = np.where(truth, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))
    features = np.column_stack([_logit(values), np.ones_like(values)])
    parameters = np.array([1.0, 0.0])
    for _ in range(100):
        predicted = _sigmoid(features @ parameters)
        gradient = features.T @ (predicted - targets)
        hessian = (features * (predicted * (1 - predicted))[:, None]).T @ features + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        parameters = parameters - step
        if np.max(np.abs(step)) < 1e-10:
            break
    slope, intercept = float(max(parameters[0], 0.0)), float(parameters[1])
    return slope, intercept


def _logit(values: np.ndarray) -> np.ndarray:
    clipped = np.clip(values, _LOGIT_EPSILON, 1.0 - _LOGIT_EPSILON)
    return np.asarray(np.log(clipped / (1.0 - clipped)))


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(values, -500.0, 500.0))))
