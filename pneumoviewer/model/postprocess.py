"""From the network's probability maps to a mask and a triage score: the SIIM-ACR winners' "triplet".

A case is called positive only when enough pixels pass a high threshold (`presence_threshold`,
`presence_min_pixels`); the mask is then the region over a lower threshold (`mask_threshold`), minus
lesions smaller than `min_lesion_area_px`. A separate high threshold for presence and a low one for
extent is what beat the empty-mask baseline in the challenge: false-positive masks on the ~78 %
empty images cost a full point each, while a generous outline of a true lesion raises its Dice.

Pixel counts are given in pixels of a 1024x1024 image (the challenge resolution) and scaled with the
image area, so settings tuned on 256x256 validation maps mean the same thing on a 1024x1024 image
or on a 2000x1800 CR.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from skimage.measure import label

# Pixel-count settings are expressed at this image area (1024 x 1024) and scaled to the actual one.
REFERENCE_AREA_PX = 1024 * 1024


@dataclass(frozen=True)
class InferenceSettings:
    """Every user-tunable inference setting, saved in the model card and overridable per request.

    The challenge call's gate (`presence_score`) is `presence_head_weight * p_head + (1 -
    presence_head_weight) * p_top`, where `p_head` is the presence head's probability and `p_top` is
    the `presence_min_pixels`-th highest pixel probability. With weight 0, "gate >= presence_threshold"
    is exactly the winners' rule "at least presence_min_pixels pixels reach presence_threshold"; with
    weight 1 the presence head alone decides. The positive/negative call is `PostProcessed.positive`
    (the gate reaches `presence_threshold` AND a lesion survives `mask_threshold` and
    `min_lesion_area_px`), so a high-scoring image whose lesions are all too small is negative.

    The triage score (`triage_score`: what the worklist sorts by, the red flag compares with the
    triage point and the calibration turns into a probability) is that same gate, or with
    `triage_by_presence_head` the presence head's probability alone: the gate's mix is tuned for the
    challenge score (mean Dice), which a ranking need not share (docs/model.md, "The triage score").
    """

    tta: bool = False
    presence_threshold: float = 0.75
    presence_min_pixels: int = 2000
    mask_threshold: float = 0.4
    min_lesion_area_px: int = 0
    presence_head_weight: float = 0.5
    triage_by_presence_head: bool = False

    def __post_init__(self) -> None:
        for name in ("presence_threshold", "mask_threshold", "presence_head_weight"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"inference setting {name} must be between 0 and 1, got {value!r}")
        for name in ("presence_min_pixels", "min_lesion_area_px"):
            value = getattr(self, name)
            if value < 0 or int(value) != value:
                raise ValueError(f"inference setting {name} must be a whole number >= 0, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> InferenceSettings:
        """Settings from a model card or a request; missing keys take the defaults.

        Unknown keys are an error: a misspelt override that silently did nothing would leave the
        user believing a threshold had changed.
        """
        known = {field.name: field for field in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown inference setting(s): {', '.join(unknown)}; known: {', '.join(known)}")
        # Annotations are strings here (`from __future__ import annotations`): "bool", "int", "float".
        converted: dict[str, Any] = {
            name: _convert_setting(name, str(known[name].type), value) for name, value in values.items()
        }
        return cls(**converted)


def _convert_setting(name: str, kind: str, value: Any) -> bool | int | float:
    """One JSON value to the field's type (`kind` is the annotation text), with a message naming it."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"inference setting {name} must be true or false, got {value!r}")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"inference setting {name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(number):
        raise ValueError(f"inference setting {name} must be a number, got {value!r}")
    if kind == "int":
        if number != int(number):
            raise ValueError(f"inference setting {name} must be a whole number, got {value!r}")
        return int(number)
    return number


def scaled_pixel_count(count_at_reference: int, shape: tuple[int, ...]) -> int:
    """A pixel count given at 1024x1024, rescaled to an image of `shape` (never below 1 if non-zero)."""
    if count_at_reference <= 0:
        return 0
    area = int(np.prod(shape[-2:]))
    return max(1, round(count_at_reference * area / REFERENCE_AREA_PX))


def presence_score(
    probability: np.ndarray, presence_probability: float | None, settings: InferenceSettings
) -> float:
    """The challenge call's gate in [0, 1] (see `InferenceSettings`); cheap enough for threshold sweeps."""
    flat = np.asarray(probability, dtype=np.float32).ravel()
    top_rank = min(max(1, scaled_pixel_count(settings.presence_min_pixels, probability.shape)), flat.size)
    # The top_rank-th highest probability: np.partition is linear time, no full sort.
    top_probability = float(np.partition(flat, flat.size - top_rank)[flat.size - top_rank])
    if presence_probability is None:
        return top_probability
    weight = settings.presence_head_weight
    score = weight * float(presence_probability) + (1.0 - weight) * top_probability
    return float(min(1.0, max(0.0, score)))


def triage_score(gate: float, presence_probability: float | None, settings: InferenceSettings) -> float:
    """THE triage score in [0, 1] of an image whose gate (`presence_score`) is `gate` (see `InferenceSettings`)."""
    if settings.triage_by_presence_head and presence_probability is not None:
        return float(min(1.0, max(0.0, presence_probability)))
    return gate


def remove_small_lesions(mask: np.ndarray, min_area_px: int) -> np.ndarray:
    """Drop 8-connected regions with fewer than `min_area_px` pixels (already scaled to this image)."""
    if min_area_px <= 1 or not mask.any():
        return mask
    labels = label(mask, connectivity=2)
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area_px
    keep[0] = False
    return keep[labels]


@dataclass(frozen=True)
class PostProcessed:
    """One image's outcome: the lesion mask, the triage score and THE positive/negative call.

    `positive` is the one meaning of "positive" everywhere (findings panel, predict's CSV, evaluate,
    tuning): the gate (`presence_score`) reaches `presence_threshold` and the final mask is non-empty.
    The mask is empty exactly when the call is negative. `score` is the triage score (`triage_score`).
    """

    mask: np.ndarray  # bool HxW
    score: float  # in [0, 1]
    positive: bool


def postprocess(
    probability: np.ndarray, presence_probability: float | None, settings: InferenceSettings,
    network_map: np.ndarray | None = None,
) -> PostProcessed:
    """Triplet post-processing of one probability map (float HxW in [0, 1]).

    `presence_probability` is the presence head's probability, or None for a mask-only network.
    `network_map` is the same map at the network's resolution when `probability` was upsampled to the
    image: the gate is measured on it, as tuning measures it on held-out maps (its pixel count
    scales with the area either way, but the upsampling's smoothing moved v2's gate by up to 0.016
    and changed 2 of fold 0's 216 calls); the mask and the lesion rule use `probability`.
    """
    probability = np.asarray(probability)
    if probability.ndim != 2:
        raise ValueError(f"probability map must be 2-D (H, W), got shape {probability.shape}")
    gate = presence_score(probability if network_map is None else network_map, presence_probability, settings)
    score = triage_score(gate, presence_probability, settings)
    if gate < settings.presence_threshold:
        return PostProcessed(np.zeros(probability.shape, dtype=bool), score, positive=False)
    mask = probability >= settings.mask_threshold
    mask = remove_small_lesions(mask, scaled_pixel_count(settings.min_lesion_area_px, probability.shape))
    return PostProcessed(mask, score, positive=bool(mask.any()))
