"""What a model card says that reports and labels show: its operating points, calibration and version.

The card (resources/models/*.json, `ModelCard`) may hold `operating_points` {"triage", "challenge":
{threshold, sensitivity, specificity}} and `calibration` (model/calibration.py). A card without
them has one operating point, the challenge rule's presence threshold from its settings, with the
validation sensitivity and specificity from its metrics; its score is then not a probability, and
every report says so rather than calling it one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRIAGE = "triage"
CHALLENGE = "challenge"
OPERATING_POINT_NAMES = (TRIAGE, CHALLENGE)
NO_TRIAGE_POINT = "this model's card has no triage operating point"


@dataclass(frozen=True)
class OperatingPoint:
    name: str  # "triage" or "challenge"
    threshold: float  # on the triage score: called positive at score >= threshold
    sensitivity: float  # on the card's validation images (NaN when not recorded)
    specificity: float


def operating_points(card: Mapping[str, Any] | None) -> dict[str, OperatingPoint]:
    """The card's operating points by name, triage first; the challenge point from its settings when the
    card lists none (older cards)."""
    if not card:
        return {}
    listed = card.get("operating_points") or {}
    points = {}
    for name in OPERATING_POINT_NAMES:
        values = listed.get(name)
        if isinstance(values, Mapping) and _number(values.get("threshold")) is not None:
            points[name] = OperatingPoint(name, float(values["threshold"]), _figure(values.get("sensitivity")),
                                          _figure(values.get("specificity")))
    threshold = _number((card.get("settings") or {}).get("presence_threshold"))
    if CHALLENGE not in points and threshold is not None:
        metrics = card.get("metrics") or {}
        points[CHALLENGE] = OperatingPoint(CHALLENGE, threshold, _figure(metrics.get("sensitivity")),
                                           _figure(metrics.get("specificity")))
    return points


def has_calibration(card: Mapping[str, Any] | None) -> bool:
    return bool(card) and isinstance(card.get("calibration"), Mapping)  # type: ignore[union-attr]


def calibrated_probability(card: Mapping[str, Any] | None, score: float) -> float | None:
    """The card's calibrated probability of a pneumothorax for `score`; None for an uncalibrated card."""
    if not has_calibration(card):
        return None
    from pneumoviewer.model.calibration import Calibration  # type: ignore[import-not-found]  # calib's, being merged

    assert card is not None
    return float(Calibration.from_card(card["calibration"]).probability(score))


def ai_note(card: Mapping[str, Any] | None, score: float | None) -> str | None:
    """How an AI lesion's label names the AI's confidence: "p 0.93" (calibrated) or "score 0.97"."""
    if score is None:
        return None
    probability = calibrated_probability(card, score)
    return f"score {score:.2f}" if probability is None else f"p {probability:.2f}"


def model_version(card: Mapping[str, Any] | None, fingerprint: str | None) -> str:
    """The model in one line: its fingerprint (weights + card) and when the card was made."""
    parts = [f"model {fingerprint[:12]}" if fingerprint else "model unknown"]
    if card:
        network = card.get("network") or {}
        if network.get("encoder"):
            parts.append(f"{network['encoder']} at {network.get('input_size', '?')} px")
        if card.get("created"):
            parts.append(f"card of {card['created']}")
    return ", ".join(parts)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _figure(value: Any) -> float:
    number = _number(value)
    return math.nan if number is None else number
