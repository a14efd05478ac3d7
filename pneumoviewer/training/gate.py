"""The gate: the current and the candidate model side by side on the held-out reviewed cases, and a decision.

Both models run through the app's pipeline (`train.predict_maps`: `prepare_batch` + `run_network`,
each with its own card's TTA setting) on the same held-out examples, and each is post-processed with
its own card's settings (`postprocess`, `metrics`: the challenge score and the AUC of the triage
score). Sensitivity and specificity are read at each model's triage point (`operating_points`: the
card's triage threshold, `flagged`; an older card's is its challenge threshold).

The decision compares the two on the same images, by the challenge score (what the masks score) and
the AUC (how the worklist ranks):
- worse: either falls by more than its margin (`SCORE_MARGIN`, `AUC_MARGIN`);
- better: neither falls by more than its margin and one rises by more than its margin;
- not worse: otherwise.
A paired bootstrap over the held-out images gives the 90 % interval of each difference; with fewer
than `MIN_POSITIVES` positives or `MIN_CASES` cases the slice is flagged as too small to tell.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

import numpy as np
import torch

from pneumoviewer import metrics
from pneumoviewer.model.card import ModelCard
from pneumoviewer.model.network import PneumothoraxNet
from pneumoviewer.model.operating_points import OperatingPoints, flagged
from pneumoviewer.model.pipeline import InputSpec
from pneumoviewer.model.postprocess import InferenceSettings, postprocess

SCORE_MARGIN = 0.005  # challenge score: a change smaller than this is no change
AUC_MARGIN = 0.01
MIN_CASES = 40
MIN_POSITIVES = 10
_BOOTSTRAP_SAMPLES = 1000


class Decision(str, Enum):
    BETTER = "better"
    NOT_WORSE = "not worse"
    WORSE = "worse"


@dataclass(frozen=True)
class SliceFigures:
    """One model on one set of labelled examples."""

    cases: int
    positives: int
    challenge_score: float
    roc_auc: float
    sensitivity: float  # at the triage point
    specificity: float
    triage_threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SliceFigures:
        return cls(**{key: values[key] for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ImageResults:
    """Per-image outcomes behind `SliceFigures` (kept for the paired comparison, not in the card)."""

    dice: np.ndarray
    scores: np.ndarray
    truth: np.ndarray


@dataclass(frozen=True)
class GateReport:
    current: SliceFigures
    candidate: SliceFigures
    decision: Decision
    reasons: tuple[str, ...]
    warning: str | None
    score_interval: tuple[float, float]  # 90 % paired-bootstrap interval of candidate - current
    auc_interval: tuple[float, float]
    forgetting: dict[str, SliceFigures] | None = None  # "current"/"candidate" on the developers' validation split

    @property
    def promotable(self) -> bool:
        """Promotion without a second confirmation: the candidate is not worse."""
        return self.decision is not Decision.WORSE

    def to_dict(self) -> dict[str, Any]:
        return {
            "current": self.current.to_dict(), "candidate": self.candidate.to_dict(),
            "decision": self.decision.value, "reasons": list(self.reasons), "warning": self.warning,
            "score_interval": [round(v, 4) for v in self.score_interval],
            "auc_interval": [round(v, 4) for v in self.auc_interval],
            "forgetting": None if self.forgetting is None else
            {name: figures.to_dict() for name, figures in self.forgetting.items()},
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GateReport:
        forgetting = values.get("forgetting")
        return cls(
            SliceFigures.from_dict(values["current"]), SliceFigures.from_dict(values["candidate"]),
            Decision(values["decision"]), tuple(values.get("reasons") or ()), values.get("warning"),
            _pair(values["score_interval"]), _pair(values["auc_interval"]),
            None if forgetting is None else {name: SliceFigures.from_dict(f) for name, f in forgetting.items()},
        )


def _pair(values: Any) -> tuple[float, float]:
    return float(values[0]), float(values[1])


def triage_threshold(card: ModelCard) -> float:
    """The card's triage threshold on the triage score (an older card's: its challenge threshold)."""
    return OperatingPoints.from_card(card.to_dict()).triage.threshold


def run_on_examples(
    model: PneumothoraxNet, card: ModelCard, pixels: np.ndarray, masks: np.ndarray, device: torch.device,
    batch_size: int = 16,
) -> tuple[SliceFigures, ImageResults]:
    """The model's figures on cached examples (uint8 pixels and bool masks at its input size)."""
    from pneumoviewer.training.train import predict_maps

    settings = InferenceSettings.from_dict(card.settings)
    maps, presence = predict_maps(model, pixels, InputSpec.from_card(card), device, settings.tta, batch_size)
    outputs = [postprocess(p, float(h), settings) for p, h in zip(maps, presence, strict=True)]
    truth = np.asarray(masks.reshape(len(masks), -1).any(axis=1), dtype=bool)
    dice = np.array([metrics.dice(output.mask, mask) for output, mask in zip(outputs, masks, strict=True)])
    scores = np.array([output.score for output in outputs])
    threshold = triage_threshold(card)
    called = np.array([flagged(score, threshold) for score in scores], dtype=bool)
    sensitivity, specificity = metrics.sensitivity_specificity(called, truth)
    figures = SliceFigures(
        cases=len(truth), positives=int(truth.sum()), challenge_score=float(dice.mean()),
        roc_auc=float(metrics.roc_auc(scores, truth)), sensitivity=float(sensitivity),
        specificity=float(specificity), triage_threshold=threshold,
    )
    return figures, ImageResults(dice, scores, truth)


def decide(
    current: SliceFigures, candidate: SliceFigures, current_images: ImageResults, candidate_images: ImageResults,
    seed: int = 0,
) -> GateReport:
    """Compare the two models on the same images (see the module's rule)."""
    score_change = candidate.challenge_score - current.challenge_score
    auc_change = _difference(candidate.roc_auc, current.roc_auc)
    reasons = []
    worse = []
    if score_change < -SCORE_MARGIN:
        worse.append(f"its challenge score is {-score_change:.3f} lower")
    if auc_change < -AUC_MARGIN:
        worse.append(f"its AUC is {-auc_change:.3f} lower")
    if worse:
        decision = Decision.WORSE
        reasons = worse
    elif score_change > SCORE_MARGIN or auc_change > AUC_MARGIN:
        decision = Decision.BETTER
        reasons = [f"challenge score {score_change:+.3f}, AUC {auc_change:+.3f}"]
    else:
        decision = Decision.NOT_WORSE
        reasons = [f"challenge score {score_change:+.3f}, AUC {auc_change:+.3f}: within "
                   f"±{SCORE_MARGIN} and ±{AUC_MARGIN}"]
    score_interval, auc_interval = _paired_intervals(current_images, candidate_images, seed)
    return GateReport(current, candidate, decision, tuple(reasons), _size_warning(current), score_interval,
                      auc_interval)


def _difference(new: float, old: float) -> float:
    """A NaN AUC (a slice of one class) counts as no change."""
    return 0.0 if math.isnan(new) or math.isnan(old) else new - old


def _size_warning(figures: SliceFigures) -> str | None:
    negatives = figures.cases - figures.positives
    if figures.cases >= MIN_CASES and figures.positives >= MIN_POSITIVES and negatives >= MIN_POSITIVES:
        return None
    return (f"The held-out slice is too small to tell: {figures.cases} cases, {figures.positives} with a "
            f"pneumothorax (at least {MIN_CASES} and {MIN_POSITIVES} are needed). Review more cases and "
            "fine-tune again before trusting the difference.")


def _paired_intervals(
    current: ImageResults, candidate: ImageResults, seed: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """90 % intervals of candidate - current (challenge score, AUC), resampling images with replacement."""
    generator = np.random.default_rng(seed)
    count = len(current.truth)
    score_changes, auc_changes = [], []
    for _ in range(_BOOTSTRAP_SAMPLES):
        rows = generator.integers(0, count, count)
        truth = current.truth[rows]
        score_changes.append(float(candidate.dice[rows].mean() - current.dice[rows].mean()))
        if truth.any() and not truth.all():
            auc_changes.append(metrics.roc_auc(candidate.scores[rows], truth)
                               - metrics.roc_auc(current.scores[rows], truth))

    def interval(values: list[float]) -> tuple[float, float]:
        if not values:
            return (math.nan, math.nan)
        low, high = np.percentile(values, [5, 95])
        return float(low), float(high)

    return interval(score_changes), interval(auc_changes)


def gate_table(report: GateReport) -> str:
    """The gate as a plain-text table (the CLI prints it; the dialog shows the same rows)."""
    lines = [f"{'':34}{'current':>10}{'candidate':>11}"]
    for label, current, candidate in table_rows(report.current, report.candidate):
        lines.append(f"{label:34}{current:>10}{candidate:>11}")
    lines.append(f"{'90% interval of the change':34}score {_interval(report.score_interval)}, "
                 f"AUC {_interval(report.auc_interval)}")
    if report.forgetting is not None:
        lines.append("On the developers' SIIM validation split (forgetting):")
        for label, current, candidate in table_rows(report.forgetting["current"], report.forgetting["candidate"]):
            lines.append(f"  {label:32}{current:>10}{candidate:>11}")
    lines.append(f"Decision: the candidate is {report.decision.value.upper()} ({'; '.join(report.reasons)})")
    if report.warning:
        lines.append(f"Warning: {report.warning}")
    return "\n".join(lines)


def table_rows(current: SliceFigures, candidate: SliceFigures) -> list[tuple[str, str, str]]:
    """(figure, current, candidate) rows, as the CLI and the dialog show them."""
    def number(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.3f}"

    return [
        ("cases (with pneumothorax)", f"{current.cases} ({current.positives})",
         f"{candidate.cases} ({candidate.positives})"),
        ("challenge score", number(current.challenge_score), number(candidate.challenge_score)),
        ("AUC", number(current.roc_auc), number(candidate.roc_auc)),
        ("sensitivity at the triage point", number(current.sensitivity), number(candidate.sensitivity)),
        ("specificity at the triage point", number(current.specificity), number(candidate.specificity)),
    ]


def _interval(values: tuple[float, float]) -> str:
    if math.isnan(values[0]):
        return "n/a"
    return f"[{values[0]:+.3f}, {values[1]:+.3f}]"
