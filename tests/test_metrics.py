"""Metrics: Dice and the challenge score on the real labels, presence confusion, ROC AUC with ties."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pneumoviewer.io.annotations import read_annotation_masks
from pneumoviewer.metrics import (
    PresenceConfusion,
    challenge_score,
    dice,
    presence_confusion,
    roc_auc,
    segmentation_figures,
    sensitivity_specificity,
)


def test_dice_on_small_masks() -> None:
    empty = np.zeros((4, 4), dtype=bool)
    half = empty.copy()
    half[:2] = True
    quarter = empty.copy()
    quarter[:1] = True
    assert dice(empty, empty) == 1.0  # the challenge's rule: empty on empty is perfect
    assert dice(half, empty) == 0.0 and dice(empty, half) == 0.0
    assert dice(half, half) == 1.0
    assert dice(quarter, half) == pytest.approx(2 * 4 / (4 + 8))
    with pytest.raises(ValueError, match="shapes differ"):
        dice(half, np.zeros((4, 5), dtype=bool))


def test_challenge_score_on_the_siim_labels(siim_labels_csv: Path) -> None:
    truth = list(read_annotation_masks(siim_labels_csv).values())
    assert challenge_score(truth, truth) == 1.0
    empty = np.zeros((1024, 1024), dtype=bool)
    assert challenge_score([empty] * len(truth), truth) == pytest.approx(852 / 1074)  # the negatives' share
    shifted = [np.roll(mask, 8, axis=1) if mask.any() else mask for mask in truth]
    positive_dice = [dice(s, t) for s, t in zip(shifted, truth) if t.any()]
    expected = (852 + sum(positive_dice)) / 1074
    assert challenge_score(shifted, truth) == pytest.approx(expected)
    assert 852 / 1074 < expected < 1.0


def test_challenge_score_needs_paired_masks() -> None:
    mask = np.zeros((2, 2), dtype=bool)
    with pytest.raises(ValueError, match="2 predicted masks for 1 true masks"):
        challenge_score([mask, mask], [mask])
    with pytest.raises(ValueError, match="no images"):
        challenge_score([], [])


def test_presence_confusion_and_rates() -> None:
    predicted = [True, True, False, False, True, False]
    actual = [True, False, False, True, True, False]
    confusion = presence_confusion(predicted, actual)
    assert confusion == PresenceConfusion(true_positive=2, false_positive=1, true_negative=2, false_negative=1)
    assert confusion.sensitivity == pytest.approx(2 / 3)
    assert confusion.specificity == pytest.approx(2 / 3)
    assert sensitivity_specificity(predicted, actual) == (confusion.sensitivity, confusion.specificity)
    only_negatives = presence_confusion([False, True], [False, False])
    assert math.isnan(only_negatives.sensitivity) and only_negatives.specificity == 0.5


def test_segmentation_figures_on_real_labels_shifted(siim_labels_csv: Path) -> None:
    truth = list(read_annotation_masks(siim_labels_csv).values())[:200]
    predicted = [np.roll(mask, 8, axis=1) if index % 3 else np.zeros_like(mask) for index, mask in enumerate(truth)]
    called = [bool(mask.any()) for mask in predicted]
    actual = [bool(mask.any()) for mask in truth]
    scores = [float(c) + 0.01 * index for index, c in enumerate(called)]
    figures = segmentation_figures([dice(p, t) for p, t in zip(predicted, truth)], called, scores, actual)
    assert figures.images_evaluated == 200 and figures.positive_images == sum(actual)
    assert figures.challenge_score == pytest.approx(challenge_score(predicted, truth))
    assert figures.all_empty_score == pytest.approx(challenge_score([np.zeros_like(t) for t in truth], truth))
    assert figures.gain_over_all_empty == pytest.approx(figures.challenge_score - figures.all_empty_score)
    assert figures.confusion == presence_confusion(called, actual)
    assert (figures.sensitivity, figures.specificity) == sensitivity_specificity(called, actual)
    assert figures.roc_auc == roc_auc(scores, actual)
    positive_dice = [dice(p, t) for p, t in zip(predicted, truth) if t.any()]
    assert figures.mean_dice_on_positive_images == pytest.approx(np.mean(positive_dice))
    as_dict = figures.to_dict(digits=3)
    assert as_dict["confusion"] == {"true_positive": figures.confusion.true_positive,
                                    "false_positive": figures.confusion.false_positive,
                                    "true_negative": figures.confusion.true_negative,
                                    "false_negative": figures.confusion.false_negative}
    assert as_dict["challenge_score"] == round(figures.challenge_score, 3)


def test_segmentation_figures_need_paired_images() -> None:
    with pytest.raises(ValueError, match="2 Dice scores for 1 images"):
        segmentation_figures([1.0, 0.0], [False], [0.1], [False])
    with pytest.raises(ValueError, match="no images"):
        segmentation_figures([], [], [], [])
    only_negatives = segmentation_figures([1.0], [False], [0.2], [False])
    assert math.isnan(only_negatives.mean_dice_on_positive_images) and math.isnan(only_negatives.roc_auc)


def test_roc_auc_known_values() -> None:
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75  # sklearn's documented example
    assert roc_auc([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5  # all tied: chance
    assert roc_auc([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == 0.875  # one tied pair counts one half
    assert math.isnan(roc_auc([0.1, 0.9], [1, 1]))
    with pytest.raises(ValueError, match="finite"):
        roc_auc([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="3 scores for 2 images"):
        roc_auc([0.1, 0.2, 0.3], [0, 1])


def _pairwise_auc(scores: list[float], actual: list[bool]) -> float:
    """The definition: P(score of a positive > score of a negative), ties counting one half."""
    positive = [s for s, a in zip(scores, actual) if a]
    negative = [s for s, a in zip(scores, actual) if not a]
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=2, max_size=60).filter(
        lambda pairs: 0 < sum(a for _, a in pairs) < len(pairs)
    )
)
def test_roc_auc_equals_the_pairwise_definition_with_many_ties(pairs: list[tuple[int, bool]]) -> None:
    scores = [score / 6 for score, _ in pairs]  # few distinct values: many ties
    actual = [flag for _, flag in pairs]
    assert roc_auc(scores, actual) == pytest.approx(_pairwise_auc(scores, actual), abs=1e-12)
