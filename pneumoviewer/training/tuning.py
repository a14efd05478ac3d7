"""Choosing post-processing settings on the validation split, and the figures that go in the model card.

The search uses `postprocess.presence_score` and `postprocess.remove_small_lesions` (the same rules
the app applies), evaluated per image once and combined in vectorised form, so a full grid takes
seconds. The reported figures are then recomputed with `postprocess.postprocess` itself, image by
image, and `metrics.segmentation_figures` (the evaluate command's figures, under the same names),
so they are what the app would score with the settings at the network's resolution. A call is
`PostProcessed.positive`; the search scores a called image whose lesions are all removed as too small
like a negative one, which is what the challenge score does with an empty mask anyway.
Thresholds tuned on a split score that split optimistically; `challenge_score_crossfit` (tune on
one half, score the other, both ways) is the honest estimate.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pneumoviewer import metrics
from pneumoviewer.model.postprocess import (
    InferenceSettings,
    PostProcessed,
    postprocess,
    presence_score,
    remove_small_lesions,
    scaled_pixel_count,
)

_QUICK_GRID = {
    "presence_head_weight": (0.0, 0.5, 1.0),
    "presence_min_pixels": (1000, 3000),
    "mask_threshold": (0.3, 0.5),
    "min_lesion_area_px": (0,),
}
_FULL_GRID = {
    "presence_head_weight": (0.0, 0.25, 0.5, 0.75, 1.0),
    "presence_min_pixels": (250, 500, 1000, 2000, 3000, 5000),
    "mask_threshold": (0.2, 0.3, 0.4, 0.5, 0.6),
    "min_lesion_area_px": (0, 500, 1500),
}
_PRESENCE_THRESHOLDS = np.round(np.arange(0.05, 0.975, 0.025), 3)


@dataclass(frozen=True)
class ValidationSet:
    """Validation examples at the network's input size: uint8 pixels [N,S,S] and bool masks [N,S,S]."""

    pixels: np.ndarray
    masks: np.ndarray

    @property
    def positive(self) -> np.ndarray:
        return np.asarray(self.masks.reshape(len(self.masks), -1).any(axis=1), dtype=bool)


def tune_settings(
    validation: ValidationSet, probabilities: np.ndarray, presence: np.ndarray, quick: bool = False
) -> tuple[InferenceSettings, dict[str, Any]]:
    """The settings with the best challenge score on `validation`, and the validation figures.

    `probabilities` are the network's maps [N,S,S], `presence` its presence-head probabilities [N].
    """
    grid = _QUICK_GRID if quick else _FULL_GRID
    settings, _ = _search(validation.masks, probabilities, presence, grid, np.arange(len(presence)))
    figures = evaluate_settings(validation, probabilities, presence, settings)
    if not quick:
        figures["challenge_score_crossfit"] = _crossfit_score(validation.masks, probabilities, presence, grid)
    return settings, figures


def fit_presence_threshold(
    masks: np.ndarray, probabilities: np.ndarray, presence: np.ndarray, settings: InferenceSettings,
    thresholds: np.ndarray | None = None,
) -> tuple[float, float]:
    """The presence threshold with the best challenge score on these images, every other setting kept:
    (threshold, its challenge score). Ties keep `settings.presence_threshold` when it is among the best,
    else the highest (fewest calls). Only the call moves, not the triage score, so the AUC stays.

    `thresholds` default: 0.80 to 0.995 in steps of 0.005 (where the challenge rule's thresholds lie)."""
    grid = np.round(np.arange(0.80, 0.9951, 0.005), 3) if thresholds is None else np.asarray(thresholds)
    truth_empty = ~masks.reshape(len(masks), -1).any(axis=1)
    outputs = [postprocess(p, float(h), replace(settings, presence_threshold=0.0))
               for p, h in zip(probabilities, presence, strict=True)]
    dice = np.array([metrics.dice(output.mask, mask) for output, mask in zip(outputs, masks, strict=True)])
    has_lesion = np.array([output.mask.any() for output in outputs])
    gates = np.array([presence_score(p, float(h), settings) for p, h in zip(probabilities, presence, strict=True)])
    candidates = sorted({float(settings.presence_threshold), *map(float, grid)})
    results = {}
    for threshold in candidates:
        called = (gates >= threshold) & has_lesion
        results[threshold] = float(np.where(called, dice, truth_empty).mean())
    best = max(results.values())
    tied = [threshold for threshold, score in results.items() if score >= best - 1e-12]
    chosen = float(settings.presence_threshold) if float(settings.presence_threshold) in tied else max(tied)
    return chosen, results[chosen]


def evaluate_settings(
    validation: ValidationSet, probabilities: np.ndarray, presence: np.ndarray, settings: InferenceSettings
) -> dict[str, Any]:
    """`metrics.segmentation_figures` of `settings` (via `postprocess`), plus the presence head's own AUC."""
    truth = validation.positive
    outputs: list[PostProcessed] = [
        postprocess(p, float(h), settings) for p, h in zip(probabilities, presence, strict=True)
    ]
    figures = metrics.segmentation_figures(
        [metrics.dice(output.mask, mask) for output, mask in zip(outputs, validation.masks, strict=True)],
        [output.positive for output in outputs],
        [output.score for output in outputs],
        truth,
    )
    return {**figures.to_dict(digits=4), "roc_auc_presence_head": round(float(metrics.roc_auc(presence, truth)), 4)}


def _search(
    masks: np.ndarray, probabilities: np.ndarray, presence: np.ndarray, grid: dict[str, tuple], subset: np.ndarray
) -> tuple[InferenceSettings, float]:
    """Grid search on the images in `subset`; returns the best settings and their challenge score."""
    truth_empty = ~masks[subset].reshape(len(subset), -1).any(axis=1)
    # Score of an image called negative: 1 if it is empty, else 0.
    negative_score = truth_empty.astype(np.float64)
    mask_scores = {}
    for threshold, area in itertools.product(grid["mask_threshold"], grid["min_lesion_area_px"]):
        mask_scores[threshold, area] = np.array([
            metrics.dice(
                remove_small_lesions(probabilities[i] >= threshold, scaled_pixel_count(area, probabilities[i].shape)),
                masks[i],
            )
            for i in subset
        ])
    best: tuple[float, InferenceSettings] | None = None
    for weight, min_pixels in itertools.product(grid["presence_head_weight"], grid["presence_min_pixels"]):
        probe = InferenceSettings(presence_head_weight=weight, presence_min_pixels=min_pixels)
        scores = np.array([presence_score(probabilities[i], float(presence[i]), probe) for i in subset])
        called = scores[None, :] >= _PRESENCE_THRESHOLDS[:, None]  # [thresholds, images]
        for (threshold, area), dice in mask_scores.items():
            challenge = np.where(called, dice[None, :], negative_score[None, :]).mean(axis=1)
            index = int(np.argmax(challenge))
            if best is None or challenge[index] > best[0]:
                best = (float(challenge[index]), InferenceSettings(
                    presence_threshold=float(_PRESENCE_THRESHOLDS[index]), presence_min_pixels=min_pixels,
                    mask_threshold=threshold, min_lesion_area_px=area, presence_head_weight=weight,
                ))
    assert best is not None
    return best[1], best[0]


def _crossfit_score(
    masks: np.ndarray, probabilities: np.ndarray, presence: np.ndarray, grid: dict[str, tuple], seed: int = 0
) -> float:
    """Mean challenge score over images each scored with settings tuned on the other half only."""
    positive = masks.reshape(len(masks), -1).any(axis=1)
    generator = np.random.default_rng(seed)
    # Deal positives, then negatives, alternately into the halves: both stay stratified.
    order = np.concatenate([generator.permutation(np.flatnonzero(positive == label)) for label in (True, False)])
    halves = [[int(i) for i in order[0::2]], [int(i) for i in order[1::2]]]
    total = 0.0
    for tune_half, score_half in ((0, 1), (1, 0)):
        settings, _ = _search(masks, probabilities, presence, grid, np.array(halves[tune_half]))
        predicted = [postprocess(probabilities[i], float(presence[i]), settings).mask for i in halves[score_half]]
        total += metrics.challenge_score(predicted, [masks[i] for i in halves[score_half]]) * len(halves[score_half])
    return round(total / len(masks), 4)
