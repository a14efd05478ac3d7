"""The model's two operating points, from the card's "operating_points" and "operating_curve".

- **challenge**: THE positive call (`Prediction.positive`, `postprocess`): the score reaches
  `presence_threshold` and a lesion survives post-processing. Masks, CSV exports and the challenge
  score follow it; it is tuned for the challenge metric, so it calls few cases (v1: sensitivity 0.34).
- **triage**: the worklist's red flag (`Prediction.flagged`): the score reaches the triage threshold,
  chosen out-of-fold for sensitivity (default: the threshold giving 0.90). A flagged case is one to
  read first, not a lesion the AI outlines; `flagged` is the one rule for it, in the app and the CLI.

The card's curve lists the thresholds a reader can choose instead (`metrics.operating_curve`), each
with its out-of-fold sensitivity and specificity. A card without these keys (an older model) gets a
triage point at its challenge threshold, so its flag is what it always was: the score's part of the
challenge call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_TRIAGE_SENSITIVITY = 0.90


def flagged(score: float, triage_threshold: float) -> bool:
    """THE triage call: is this case flagged to be read first at this triage threshold?"""
    return score >= triage_threshold


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    sensitivity: float | None = None  # out-of-fold, None when not measured
    specificity: float | None = None

    def to_card(self) -> dict[str, Any]:
        return {"threshold": round(self.threshold, 6), "sensitivity": _rounded(self.sensitivity),
                "specificity": _rounded(self.specificity)}

    @classmethod
    def from_card(cls, values: Mapping[str, Any]) -> OperatingPoint:
        try:
            threshold = float(values["threshold"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"operating point without a valid threshold ({error})") from None
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"operating point threshold must be between 0 and 1, got {threshold}")
        return cls(threshold, _optional(values.get("sensitivity")), _optional(values.get("specificity")))

    def label(self) -> str:
        """What a reader is told about this point: 'sensitivity 0.90, specificity 0.62'."""
        if self.sensitivity is None or self.specificity is None:
            return f"threshold {self.threshold:.3f}"
        return f"sensitivity {self.sensitivity:.2f}, specificity {self.specificity:.2f}"


@dataclass(frozen=True)
class OperatingPoints:
    triage: OperatingPoint
    challenge: OperatingPoint
    curve: tuple[OperatingPoint, ...] = ()  # highest threshold first
    measured: bool = False  # False: an older card, the triage point is the challenge threshold

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> OperatingPoints:
        """From a model card dict (`ModelCard.to_dict()` or the JSON); ValueError for malformed entries."""
        presence_threshold = float((card.get("settings") or {}).get("presence_threshold", 0.75))
        points = card.get("operating_points") or {}
        challenge = (OperatingPoint.from_card(points["challenge"]) if "challenge" in points
                     else OperatingPoint(presence_threshold))
        triage = OperatingPoint.from_card(points["triage"]) if "triage" in points else None
        curve = tuple(_curve_point(entry) for entry in card.get("operating_curve") or ())
        return cls(triage or OperatingPoint(challenge.threshold), challenge, curve, measured=triage is not None)

    def to_card(self) -> dict[str, Any]:
        """The card's "operating_points" and "operating_curve" entries."""
        return {
            "operating_points": {"triage": self.triage.to_card(), "challenge": self.challenge.to_card()},
            "operating_curve": [[round(p.threshold, 6), _rounded(p.sensitivity), _rounded(p.specificity)]
                                for p in self.curve],
        }

    def nearest_on_curve(self, threshold: float) -> OperatingPoint:
        """The curve's point closest to `threshold` (the point itself without a curve)."""
        if not self.curve:
            return OperatingPoint(threshold)
        return min(self.curve, key=lambda point: abs(point.threshold - threshold))

    def for_sensitivity(self, sensitivity: float) -> OperatingPoint:
        """The most specific curve point reaching `sensitivity` (the last point if none does)."""
        for point in self.curve:  # highest threshold first: the first that reaches it is the most specific
            if point.sensitivity is not None and point.sensitivity >= sensitivity - 1e-9:
                return point
        return self.curve[-1] if self.curve else self.triage


def _curve_point(entry: Sequence[Any]) -> OperatingPoint:
    if not isinstance(entry, (list, tuple)) or len(entry) != 3:
        raise ValueError(f"operating curve entries are [threshold, sensitivity, specificity], got {entry!r}")
    return OperatingPoint(float(entry[0]), _optional(entry[1]), _optional(entry[2]))


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
