"""What a model card says that reports and labels show: its operating points, calibration and version.

The card (resources/models/*.json, `ModelCard`) may hold `operating_points` (triage and challenge:
`model.operating_points`) and `calibration` (`model.calibration`). Reports show the triage point
only where the card measured one (`OperatingPoints.measured`); an older card's triage point is just
its challenge threshold, so reports name the challenge point alone and say that the triage point is
missing. Without a calibration the score is no probability, and reports say "score", never "p".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pneumoviewer.model.calibration import Calibration
from pneumoviewer.model.operating_points import OperatingPoint, OperatingPoints

TRIAGE = "triage"
CHALLENGE = "challenge"
NO_TRIAGE_POINT = "this model's card has no triage operating point"


def operating_points(card: Mapping[str, Any] | None) -> dict[str, OperatingPoint]:
    """The card's measured operating points by name, triage first; {} without a card.

    A challenge point without figures (older cards) takes the card's validation sensitivity and
    specificity, which are those of the challenge call."""
    if not card:
        return {}
    points = OperatingPoints.from_card(card)
    challenge = points.challenge
    if challenge.sensitivity is None:
        metrics = card.get("metrics") or {}
        challenge = OperatingPoint(challenge.threshold, _number(metrics.get("sensitivity")),
                                   _number(metrics.get("specificity")))
    return ({TRIAGE: points.triage} if points.measured else {}) | {CHALLENGE: challenge}


def calibration(card: Mapping[str, Any] | None) -> Calibration | None:
    values = (card or {}).get("calibration")
    return Calibration.from_card(values) if isinstance(values, Mapping) else None


def calibrated_probability(card: Mapping[str, Any] | None, score: float) -> float | None:
    """The card's calibrated probability of a pneumothorax for `score`; None for an uncalibrated card."""
    fitted = calibration(card)
    return None if fitted is None else fitted.probability(score)


def ai_note(card: Mapping[str, Any] | None, score: float | None) -> str | None:
    """How an AI lesion's label names the AI's confidence: "p 0.93" (calibrated) or "score 0.97"."""
    if score is None:
        return None
    probability = calibrated_probability(card, score)
    return f"score {score:.2f}" if probability is None else f"p {probability:.2f}"


def point_figures(point: OperatingPoint) -> str:
    """"; validation sensitivity 0.90, specificity 0.62", or "" when the card did not measure them."""
    if point.sensitivity is None or point.specificity is None:
        return ""
    return f"; validation sensitivity {point.sensitivity:.2f}, specificity {point.specificity:.2f}"


def model_version(card: Mapping[str, Any] | None, fingerprint: str | None) -> str:
    """The model in one line: its fingerprint (weights + card), network, and when the card was made."""
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


@dataclass(frozen=True)
class CardCurves:
    """What a model card can draw: its training history, operating curve and calibration, each with a
    note where the card lacks it."""

    epochs: list[float] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)  # figure name -> value per epoch
    operating_curve: list[tuple[float, float]] = field(default_factory=list)  # (1 - specificity, sensitivity)
    points: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (1 - spec, sens)
    calibration: list[tuple[float, float]] = field(default_factory=list)  # (score, probability)
    notes: dict[str, str] = field(default_factory=dict)  # "history" | "operating" | "calibration" -> why empty


_HISTORY_FIGURES = ("roc_auc", "challenge_score", "all_empty_score")


def card_curves(card: Mapping[str, Any] | None) -> CardCurves:
    curves = CardCurves()
    if not card:
        return CardCurves(notes=dict.fromkeys(("history", "operating", "calibration"), "no model is loaded"))
    history = [entry for entry in (card.get("training") or {}).get("history") or [] if isinstance(entry, Mapping)]
    for entry in history:
        if _number(entry.get("epoch")) is None:
            continue
        curves.epochs.append(float(entry["epoch"]))
        for name in _HISTORY_FIGURES:
            value = _number(entry.get(name))
            curves.history.setdefault(name, []).append(math.nan if value is None else value)
    if not curves.epochs:
        curves.notes["history"] = "this card records no training history"
    fitted = OperatingPoints.from_card(card)
    curves.operating_curve.extend((1.0 - point.specificity, point.sensitivity) for point in fitted.curve
                                  if point.sensitivity is not None and point.specificity is not None)
    for name, point in operating_points(card).items():
        if point.sensitivity is not None and point.specificity is not None:
            curves.points[name] = (1.0 - point.specificity, point.sensitivity)
    if not curves.operating_curve and not curves.points:
        curves.notes["operating"] = "this card records no sensitivity and specificity of its operating points"
    elif not curves.operating_curve:
        curves.notes["operating"] = "this card records no operating curve: its points only"
    fitted_calibration = calibration(card)
    if fitted_calibration is None:
        curves.notes["calibration"] = "this card has no calibration: its score is not a probability"
    else:
        grid = [step / 50 for step in range(51)]
        curves.calibration.extend(zip(grid, (float(p) for p in fitted_calibration.probabilities(grid)), strict=True))
    return curves
