"""What inference returns for one radiograph (`inference.Predictor.predict`). Its own module without
torch, so that a prediction made in the AI's child process unpickles in the window's process, which
never imports torch (ui/model_runner.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Prediction:
    probability: np.ndarray  # float32 HxW in [0, 1], at the image's resolution
    mask: np.ndarray  # bool HxW: the post-processed lesion mask (empty for a negative call)
    score: float  # THE triage score in [0, 1] (`postprocess.triage_score`)
    # THE call: the gate reaches presence_threshold and the post-processed mask is non-empty (see
    # `postprocess.PostProcessed`). Use it rather than comparing the score or looking at the mask.
    positive: bool
    # The score as a probability of pneumothorax, by the card's calibration (fitted out-of-fold); the
    # score itself when the card has none (an uncalibrated model: then it is no probability).
    pneumothorax_probability: float
    # THE triage call at the card's triage point (`operating_points.flagged`): read this case first.
    # Chosen for sensitivity, so it flags far more cases than `positive` marks lesions.
    flagged: bool
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    # The presence head's own probability, kept so new thresholds can be applied without the network.
    presence_probability: float | None = None
