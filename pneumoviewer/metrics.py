"""Scores for pneumothorax segmentation and triage, numpy only.

- `dice` and `challenge_score`: the SIIM-ACR metric, mean per-image Dice where an empty
  prediction on an empty image scores 1 (so the all-empty submission already scores the
  share of negative images).
- `presence_confusion`, `sensitivity_specificity`: is a pneumothorax called on the image.
- `roc_auc`: how well a presence score ranks positive images above negative ones.
- `segmentation_figures`: all of the above for one run of a model over labelled images, under the
  names every report uses (the evaluate command and the model card's validation figures).

Arguments always come prediction first, truth second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
