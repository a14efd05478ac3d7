from __future__ import annotations

import json

import numpy as np
import pytest

from pneumoviewer.model.postprocess import (
    InferenceSettings,
    postprocess,
    presence_score,
    remove_small_lesions,
    scaled_pixel_count,
    triage_score,
)


def _disc(shape: tuple[int, int], center: tuple[int, int], radius: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - center[0]) ** 2 + (cols - center[1]) ** 2 <= radius**2


def test_settings_round_trip_through_json() -> None:
    settings = InferenceSettings(tta=True, presence_threshold=0.6, presence_min_pixels=500,
                                 mask_threshold=0.3, min_lesion_area_px=100, presence_head_weight=0.25)
    assert InferenceSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_settings_from_partial_dict_keeps_defaults_and_converts_json_numbers() -> None:
    settings = InferenceSettings.from_dict({"mask_threshold": 0.2, "presence_min_pixels": 300.0})
    assert settings.mask_threshold == 0.2
    assert settings.presence_min_pixels == 300 and isinstance(settings.presence_min_pixels, int)
    assert settings.presence_threshold == InferenceSettings().presence_threshold


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mask_treshold": 0.3}, "unknown inference setting"),
        ({"mask_threshold": 1.5}, "mask_threshold"),
        ({"presence_min_pixels": 12.5}, "presence_min_pixels"),
        ({"min_lesion_area_px": -1}, "min_lesion_area_px"),
        ({"tta": "yes"}, "tta"),
        ({"presence_threshold": "high"}, "presence_threshold"),
        ({"presence_head_weight": float("nan")}, "presence_head_weight"),
    ],
)
def test_settings_reject_bad_values_naming_the_setting(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InferenceSettings.from_dict(values)


def test_pixel_counts_scale_with_image_area() -> None:
    assert scaled_pixel_count(2000, (1024, 1024)) == 2000
    assert scaled_pixel_count(2000, (256, 256)) == 125
    assert scaled_pixel_count(3, (64, 64)) == 1  # never rounds a real requirement down to nothing
    assert scaled_pixel_count(0, (256, 256)) == 0


def test_triplet_calls_positive_only_with_enough_confident_pixels() -> None:
    settings = InferenceSettings(presence_threshold=0.8, presence_min_pixels=16 * 16, mask_threshold=0.3,
                                 presence_head_weight=0.0)
    shape = (256, 256)  # 16 reference pixels per image pixel: the requirement is 16 pixels here
    probability = np.zeros(shape, np.float32)
    probability[_disc(shape, (100, 100), 30)] = 0.5  # wide, uncertain region
    probability[100:103, 100:105] = 0.9  # 15 confident pixels: one short
    result = postprocess(probability, None, settings)
    assert not result.mask.any() and not result.positive
    assert result.score == pytest.approx(0.5)
    probability[103, 100] = 0.9  # the 16th
    result = postprocess(probability, None, settings)
    # Positive: the mask is the whole region over the LOW threshold, not just the confident core.
    np.testing.assert_array_equal(result.mask, probability >= 0.3)
    assert result.score == pytest.approx(0.9) and result.positive


def test_score_mixes_presence_head_and_mask_evidence() -> None:
    probability = np.full((64, 64), 0.2, np.float32)
    settings = InferenceSettings(presence_min_pixels=0, presence_head_weight=0.25)
    assert presence_score(probability, 1.0, settings) == pytest.approx(0.25 * 1.0 + 0.75 * 0.2)
    head_only = InferenceSettings(presence_head_weight=1.0, presence_threshold=0.5, mask_threshold=0.1)
    result = postprocess(probability, 0.9, head_only)
    assert result.score == pytest.approx(0.9) and result.mask.all() and result.positive
    result = postprocess(probability, 0.1, head_only)
    assert result.score == pytest.approx(0.1) and not result.mask.any() and not result.positive
    # A mask-only network (no head): the weight is ignored, the mask evidence decides.
    assert presence_score(probability, None, settings) == pytest.approx(0.2)


def test_triage_by_the_presence_head_sorts_by_it_and_leaves_the_call_to_the_gate() -> None:
    probability = np.zeros((64, 64), np.float32)
    probability[:8, :8] = 0.9  # a small confident lesion
    gate = InferenceSettings(presence_min_pixels=0, presence_head_weight=0.5, presence_threshold=0.7,
                             mask_threshold=0.5)
    head = InferenceSettings(**{**gate.to_dict(), "triage_by_presence_head": True})
    by_gate, by_head = postprocess(probability, 0.6, gate), postprocess(probability, 0.6, head)
    assert by_gate.score == pytest.approx(0.5 * 0.6 + 0.5 * 0.9) and by_head.score == pytest.approx(0.6)
    assert by_gate.positive and by_head.positive  # both calls by the same gate, 0.75 >= 0.7
    assert np.array_equal(by_gate.mask, by_head.mask)
    confident_head = postprocess(np.zeros((64, 64), np.float32), 0.95, head)
    assert confident_head.score == pytest.approx(0.95) and not confident_head.positive  # no lesion: negative
    # A mask-only network (no head) has nothing else to rank by: the gate.
    assert triage_score(0.4, None, head) == 0.4 and InferenceSettings.from_dict(head.to_dict()) == head


def test_small_lesions_are_removed_and_large_ones_kept_whole() -> None:
    shape = (128, 128)
    big = _disc(shape, (40, 40), 12)  # ~450 px
    small = _disc(shape, (100, 100), 3)  # ~29 px
    diagonal_pair = np.zeros(shape, bool)
    diagonal_pair[10, 120] = diagonal_pair[11, 121] = True  # 8-connected: one lesion of 2 px
    mask = big | small | diagonal_pair
    np.testing.assert_array_equal(remove_small_lesions(mask, 2), mask)
    np.testing.assert_array_equal(remove_small_lesions(mask, 100), big)

    probability = np.where(mask, 0.95, 0.0).astype(np.float32)
    settings = InferenceSettings(presence_threshold=0.5, presence_min_pixels=0, mask_threshold=0.5,
                                 min_lesion_area_px=100 * 64, presence_head_weight=0.0)  # 100 px at 128²
    np.testing.assert_array_equal(postprocess(probability, None, settings).mask, big)


def test_output_types_and_bad_input() -> None:
    result = postprocess(np.random.default_rng(0).random((32, 48), np.float32), 0.7, InferenceSettings())
    assert result.mask.dtype == bool and result.mask.shape == (32, 48)
    assert isinstance(result.score, float) and 0.0 <= result.score <= 1.0
    assert isinstance(result.positive, bool) and result.positive == bool(result.mask.any())
    with pytest.raises(ValueError, match="2-D"):
        postprocess(np.zeros((1, 32, 32), np.float32), None, InferenceSettings())
