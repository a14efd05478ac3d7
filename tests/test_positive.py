"""One meaning of "positive": a score over the threshold whose lesions are all too small is negative everywhere.

The case: the network is confident about a few pixels (the triage score passes `presence_threshold`),
but the region over `mask_threshold` is smaller than `min_lesion_area_px`, so post-processing removes
it. The panel used to say "pneumothorax" (score >= threshold) while the CSV said -1 (empty mask).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pneumoviewer import metrics
from pneumoviewer.model.inference import Predictor
from pneumoviewer.model.postprocess import InferenceSettings, postprocess
from pneumoviewer.training.tuning import ValidationSet, evaluate_settings

SIZE = 64
# At 64x64 one image pixel stands for 256 reference pixels: lesions under 8 pixels here are removed.
SETTINGS = InferenceSettings(
    presence_threshold=0.8, presence_min_pixels=4 * 256, mask_threshold=0.5, min_lesion_area_px=8 * 256,
    presence_head_weight=0.0,
)


def _speck_map() -> np.ndarray:
    """A 64x64 probability map whose only confident region is a 2x2 speck at 0.95."""
    probability = np.full((SIZE, SIZE), 0.05, np.float32)
    probability[20:22, 30:32] = 0.95
    return probability


def test_postprocess_calls_a_high_score_without_a_surviving_lesion_negative() -> None:
    result = postprocess(_speck_map(), None, SETTINGS)
    assert result.score >= SETTINGS.presence_threshold  # the score alone would say pneumothorax
    assert not result.mask.any()
    assert result.positive is False
    # A lesion of 9 pixels survives: the same score is then a positive call.
    bigger = _speck_map()
    bigger[20:23, 30:33] = 0.95
    assert postprocess(bigger, None, SETTINGS).positive is True


def test_the_predictor_says_negative(random_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = Predictor(random_checkpoint, runtime="torch")

    def speck_network(batch: torch.Tensor, tta: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(_speck_map())[None].expand(len(batch), -1, -1), torch.full((len(batch),), 0.9)

    monkeypatch.setattr(predictor, "run_network", speck_network)
    prediction = predictor.predict(np.random.default_rng(0).random((SIZE, SIZE), np.float32), settings=SETTINGS)
    assert prediction.score >= SETTINGS.presence_threshold
    assert prediction.positive is False and not prediction.mask.any()


def test_tuning_and_the_shared_figures_count_it_as_a_negative_call() -> None:
    truth_positive = np.zeros((SIZE, SIZE), bool)
    truth_positive[40:50, 10:20] = True  # a real lesion elsewhere: the speck finds nothing of it
    truth_masks = np.stack([truth_positive, np.zeros((SIZE, SIZE), bool)])
    validation = ValidationSet(np.zeros((2, SIZE, SIZE), np.uint8), truth_masks)
    maps = np.stack([_speck_map(), _speck_map()])
    figures = evaluate_settings(validation, maps, np.array([0.9, 0.9]), SETTINGS)
    assert figures["confusion"] == {"true_positive": 0, "false_positive": 0, "true_negative": 1, "false_negative": 1}
    assert figures["sensitivity"] == 0.0 and figures["specificity"] == 1.0
    assert figures["challenge_score"] == figures["all_empty_score"] == 0.5
    assert figures["gain_over_all_empty"] == 0.0

    shared = metrics.segmentation_figures([0.0, 1.0], [False, False], [0.9, 0.9], [True, False])
    assert shared.to_dict(4) == {key: figures[key] for key in shared.to_dict()}
