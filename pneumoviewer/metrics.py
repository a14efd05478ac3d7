"""Scores for pneumothorax segmentation and triage, numpy only.

- `dice` and `challenge_score`: the SIIM-ACR metric, mean per-image Dice where an empty
  prediction on an empty image scores 1 (so the all-empty submission already scores the
  share of negative images).
- `presence_confusion`, `sensitivity_specificity`: is a pneumothorax called on the image.
- `roc_auc`: how well a presence score ranks positive images above negative ones.
- `segmentation_figures`: all of the above for one run of a model over labelled images, under the
  names every report uses (the evaluate command and the model card's validation figures).
- Operating points: `threshold_for_sensitivity`, `operating_curve` (the thresholds a reader can
  choose from), `call_figures` (sensitivity/specificity of calls with `bootstrap_interval`s).
- Calibration: `reliability_table` (bins, observed rate, count: the reliability plot's points),
  `brier_score`, `expected_calibration_error`.

Arguments always come prediction first, truth second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Flags = Sequence[bool] | np.ndarray  # one True/False per image
Values = Sequence[float] | np.ndarray  # one number per image


def dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Dice overlap of two masks of the same shape; 1.0 when both are empty."""
    predicted, truth = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"mask shapes differ: predicted {predicted.shape}, truth {truth.shape}")
    total = np.count_nonzero(predicted) + np.count_nonzero(truth)
    if total == 0:
        return 1.0
    return 2.0 * np.count_nonzero(predicted & truth) / total


def challenge_score(predicted: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> float:
    """Mean per-image Dice over paired masks (the SIIM-ACR leaderboard score)."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted masks for {len(truth)} true masks")
    if len(truth) == 0:
        raise ValueError("no images to score")
    return float(np.mean([dice(p, t) for p, t in zip(predicted, truth, strict=True)]))


@dataclass(frozen=True)
class PresenceConfusion:
    """Image-level counts for "pneumothorax present" calls."""

    true_positive: int
    false_positive: int
    true_negative: int
    false_negative: int

    @property
    def sensitivity(self) -> float:
        """Share of positive images called positive; NaN when there are no positive images."""
        return _ratio(self.true_positive, self.true_positive + self.false_negative)

    @property
    def specificity(self) -> float:
        """Share of negative images called negative; NaN when there are no negative images."""
        return _ratio(self.true_negative, self.true_negative + self.false_positive)


def presence_confusion(predicted: Flags, actual: Flags) -> PresenceConfusion:
    """Confusion counts of per-image presence calls against the truth."""
    called, present = _paired_flags(predicted, actual)
    return PresenceConfusion(
        true_positive=int(np.count_nonzero(called & present)),
        false_positive=int(np.count_nonzero(called & ~present)),
        true_negative=int(np.count_nonzero(~called & ~present)),
        false_negative=int(np.count_nonzero(~called & present)),
    )


def sensitivity_specificity(predicted: Flags, actual: Flags) -> tuple[float, float]:
    """(sensitivity, specificity) of presence calls; see `PresenceConfusion`."""
    confusion = presence_confusion(predicted, actual)
    return confusion.sensitivity, confusion.specificity


def roc_auc(scores: Values, actual: Flags) -> float:
    """Area under the ROC curve of presence scores, equal to sklearn's `roc_auc_score`.

    Computed as the Mann-Whitney statistic with tied scores given their average rank, which
    is exactly the trapezoidal area sklearn reports when scores tie (a tie counts one half).
    NaN when `actual` holds a single class (the area is undefined; sklearn raises).
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    present = np.asarray(actual, dtype=bool).ravel()
    if values.shape != present.shape:
        raise ValueError(f"{values.size} scores for {present.size} images")
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must be finite numbers")
    positives = int(np.count_nonzero(present))
    negatives = present.size - positives
    if positives == 0 or negatives == 0:
        return math.nan
    _, tie_group, tie_sizes = np.unique(values, return_inverse=True, return_counts=True)
    group_end = np.cumsum(tie_sizes)  # 1-based rank of the last member of each tie group
    ranks = (group_end - (tie_sizes - 1) / 2.0)[tie_group]
    positive_rank_sum = float(ranks[present].sum())
    return (positive_rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


@dataclass(frozen=True)
class SegmentationFigures:
    """What a model scores on labelled images; `to_dict()` gives the names every report uses."""

    images_evaluated: int
    positive_images: int  # images whose truth mask is non-empty
    challenge_score: float  # mean per-image Dice (empty on empty = 1)
    all_empty_score: float  # the same for "no pneumothorax" everywhere: the share of negative images
    gain_over_all_empty: float  # challenge_score - all_empty_score
    mean_dice_on_positive_images: float  # NaN without positive images
    roc_auc: float  # of the triage scores; NaN with a single class
    sensitivity: float
    specificity: float
    confusion: PresenceConfusion

    def to_dict(self, digits: int | None = None) -> dict[str, Any]:
        """Plain values (confusion as a nested dict); floats rounded to `digits` when given."""
        values = asdict(self)
        if digits is not None:
            values = {key: round(value, digits) if isinstance(value, float) else value for key, value in values.items()}
        return values


def segmentation_figures(
    dice_scores: Values, called: Flags, scores: Values, actual: Flags
) -> SegmentationFigures:
    """The figures of one run over labelled images, from per-image results.

    Per image: `dice_scores` is `dice(predicted mask, truth mask)`, `called` the model's positive call
    (`Prediction.positive`), `scores` its triage score, `actual` whether the truth mask is non-empty.
    Per-image values rather than masks, so a run over thousands of full-size images needs no memory
    for their masks.
    """
    dice_values = np.asarray(dice_scores, dtype=np.float64).ravel()
    calls, present = _paired_flags(called, actual)
    if dice_values.shape != present.shape:
        raise ValueError(f"{dice_values.size} Dice scores for {present.size} images")
    if present.size == 0:
        raise ValueError("no images to score")
    confusion = presence_confusion(calls, present)
    challenge = float(dice_values.mean())
    all_empty = float(np.mean(~present))  # an empty mask scores 1 on a negative image, 0 on a positive one
    return SegmentationFigures(
        images_evaluated=int(present.size),
        positive_images=int(np.count_nonzero(present)),
        challenge_score=challenge,
        all_empty_score=all_empty,
        gain_over_all_empty=challenge - all_empty,
        mean_dice_on_positive_images=float(dice_values[present].mean()) if present.any() else math.nan,
        roc_auc=roc_auc(scores, present),
        sensitivity=confusion.sensitivity,
        specificity=confusion.specificity,
        confusion=confusion,
    )


def _paired_flags(predicted: Flags, actual: Flags) -> tuple[np.ndarray, np.ndarray]:
    called = np.asarray(predicted, dtype=bool).ravel()
    present = np.asarray(actual, dtype=bool).ravel()
    if called.shape != present.shape:
        raise ValueError(f"{called.size} predictions for {present.size} images")
    return called, present


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def threshold_for_sensitivity(scores: Values, actual: Flags, sensitivity: float) -> float:
    """The highest threshold whose call `score >= threshold` reaches `sensitivity` on these images.

    That is the k-th highest score among the positive images, k = ceil(sensitivity x positives):
    the most specific threshold that still finds the wanted share. ValueError without positives.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    present = np.asarray(actual, dtype=bool).ravel()
    if values.shape != present.shape:
        raise ValueError(f"{values.size} scores for {present.size} images")
    if not 0.0 < sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in (0, 1], got {sensitivity!r}")
    positive_scores = np.sort(values[present])[::-1]
    if positive_scores.size == 0:
        raise ValueError("no positive images: no threshold reaches a sensitivity")
    wanted = max(1, math.ceil(sensitivity * positive_scores.size - 1e-9))
    return float(positive_scores[wanted - 1])


@dataclass(frozen=True)
class CurvePoint:
    """One point of the operating curve: flag `score >= threshold`, with what that finds and spares."""

    threshold: float
    sensitivity: float
    specificity: float


def operating_curve(scores: Values, actual: Flags) -> list[CurvePoint]:
    """Every useful triage threshold: one per distinct score of a positive image, highest first.

    Between two such scores a lower threshold only adds false alarms, so these are the points a
    reader can choose from (the ROC curve's corners), from the most specific to sensitivity 1.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    present = np.asarray(actual, dtype=bool).ravel()
    if values.shape != present.shape:
        raise ValueError(f"{values.size} scores for {present.size} images")
    positives, negatives = int(present.sum()), int((~present).sum())
    negative_scores = np.sort(values[~present])
    points = []
    for threshold in np.unique(values[present])[::-1]:
        found = int(np.count_nonzero(values[present] >= threshold))
        spared = int(np.searchsorted(negative_scores, threshold, side="left"))  # negatives below it
        points.append(CurvePoint(float(threshold), _ratio(found, positives), _ratio(spared, negatives)))
    return points


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float], count: int, resamples: int = 2000, level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(indices)` over `count` images resampled with replacement.

    `statistic` receives an index array (the resampled images) and returns a number; resamples where
    it is undefined (NaN, e.g. a sensitivity without positives) are left out.
    """
    if count <= 0:
        raise ValueError("no images to resample")
    generator = np.random.default_rng(seed)
    values = np.array([statistic(generator.integers(0, count, count)) for _ in range(resamples)], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class CallFigures:
    """Sensitivity and specificity of one kind of call, with their bootstrap intervals."""

    sensitivity: float
    specificity: float
    sensitivity_interval: tuple[float, float]
    specificity_interval: tuple[float, float]
    called: int  # images called (flagged) positive
    images: int


def call_figures(called: Flags, actual: Flags, resamples: int = 2000, seed: int = 0) -> CallFigures:
    """`sensitivity_specificity` of per-image calls, with 95 % bootstrap intervals (images resampled)."""
    calls, present = _paired_flags(called, actual)
    sensitivity, specificity = sensitivity_specificity(calls, present)

    def resampled(which: int) -> Callable[[np.ndarray], float]:
        return lambda rows: sensitivity_specificity(calls[rows], present[rows])[which]

    return CallFigures(
        sensitivity, specificity,
        bootstrap_interval(resampled(0), present.size, resamples, seed=seed),
        bootstrap_interval(resampled(1), present.size, resamples, seed=seed),
        int(calls.sum()), int(present.size),
    )


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability (calibration) curve: predicted probabilities against what was observed."""

    low: float
    high: float
    mean_predicted: float  # NaN for an empty bin
    observed_rate: float  # share of images with pneumothorax; NaN for an empty bin
    count: int


def reliability_table(probabilities: Values, actual: Flags, bins: int = 10) -> list[ReliabilityBin]:
    """Probabilities grouped in `bins` equal-width bins over [0, 1], each with the observed rate.

    A calibrated model's bins lie on the diagonal (observed = predicted); plot `mean_predicted`
    against `observed_rate`, with `count` for the weight of each point.
    """
    values = np.asarray(probabilities, dtype=np.float64).ravel()
    present = np.asarray(actual, dtype=bool).ravel()
    if values.shape != present.shape:
        raise ValueError(f"{values.size} probabilities for {present.size} images")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
    table = []
    for number in range(bins):
        inside = which == number
        count = int(inside.sum())
        table.append(ReliabilityBin(
            float(edges[number]), float(edges[number + 1]),
            float(values[inside].mean()) if count else math.nan,
            float(present[inside].mean()) if count else math.nan, count,
        ))
    return table


def brier_score(probabilities: Values, actual: Flags) -> float:
    """Mean squared difference between probability and truth (0 = perfect; lower is better calibrated)."""
    values = np.asarray(probabilities, dtype=np.float64).ravel()
    present = np.asarray(actual, dtype=np.float64).ravel()
    if values.shape != present.shape:
        raise ValueError(f"{values.size} probabilities for {present.size} images")
    return float(np.mean((values - present) ** 2))


def expected_calibration_error(probabilities: Values, actual: Flags, bins: int = 10) -> float:
    """The count-weighted mean |observed - predicted| over `reliability_table`'s bins."""
    table = [entry for entry in reliability_table(probabilities, actual, bins) if entry.count]
    total = sum(entry.count for entry in table)
    return float(sum(entry.count * abs(entry.observed_rate - entry.mean_predicted) for entry in table) / total)


def sensitivity_at_specificity(scores: Values, actual: Flags, specificity: float) -> float:
    """The share of positives flagged at the lowest threshold that keeps `specificity` on the negatives.

    The call is `score > t` with t the score of the negative just above the allowed false positives
    (floor((1 - specificity) x negatives) of them): ties with that negative are not flagged. NaN
    without positives or negatives.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    present = np.asarray(actual, dtype=bool).ravel()
    if values.shape != present.shape:
        raise ValueError(f"{values.size} scores for {present.size} images")
    negatives = np.sort(values[~present])
    if negatives.size == 0 or not present.any():
        return math.nan
    allowed = int(np.floor((1.0 - specificity) * negatives.size + 1e-9))  # false positives allowed
    threshold = negatives[negatives.size - allowed - 1] if allowed < negatives.size else -np.inf
    return float(np.mean(values[present] > threshold))
