"""The model card: what a model is, how to feed it, how it was made and how well it does; no torch here.

A checkpoint `default` is `default.safetensors` (the weights, `model.checkpoint`) and `default.json`, this
card. It is kept apart from the weights so that what only reads the card needs no torch: the client of
a cluster run (`pneumoviewer predict --workers`) checks the card and the run's settings before any
worker loads the network, and stays a light process: no torch (peak RSS 688 → 113 MB, 6 files, 2 workers).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.atomic import atomic_write_text
from pneumoviewer.model.calibration import Calibration
from pneumoviewer.model.identity import checkpoint_paths
from pneumoviewer.model.operating_points import OperatingPoints

# Grey-image normalisation matching the ImageNet encoder: the average of ImageNet's RGB means / stds.
# Only the default written into a new model card; inputs are normalised from the card (`pipeline.InputSpec`).
NORMALISATION_MEAN = 0.449
NORMALISATION_STD = 0.226


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild the network's architecture (saved in the model card)."""

    encoder: str = "mobilenet_v2"
    input_size: int = 256
    in_channels: int = 1
    # Lighter than smp's (256, 128, 64, 32, 16): the full-resolution decoder stages dominate a CPU
    # training step (measured roughly 2x faster per step at 256 px), and lesion outlines at 1/4 of
    # the challenge resolution do not need wide decoder blocks.
    decoder_channels: tuple[int, ...] = (96, 64, 32, 16, 8)
    presence_head: bool = True
    presence_dropout: float = 0.2

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["decoder_channels"] = list(self.decoder_channels)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NetworkConfig:
        values = dict(values)
        if "decoder_channels" in values:
            values["decoder_channels"] = tuple(values["decoder_channels"])
        return cls(**values)


CARD_FORMAT_VERSION = 1


class CheckpointError(FileProblem):
    """A model file that cannot be used; `str()` names the file and the problem."""


def default_normalisation() -> dict[str, Any]:
    return {
        "mean": NORMALISATION_MEAN,
        "std": NORMALISATION_STD,
        "input": "DicomImage.pixels in [0,1], resized (area) to input_size",
    }


@dataclass
class ModelCard:
    """What a model is, how to feed it, how it was made and how well it does."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    normalisation: dict[str, Any] = field(default_factory=default_normalisation)
    settings: dict[str, Any] = field(default_factory=dict)  # InferenceSettings.to_dict()
    training: dict[str, Any] = field(default_factory=dict)  # data, split, command, epochs, seed
    metrics: dict[str, Any] = field(default_factory=dict)  # validation figures
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    # Fitted out-of-fold after training (model/calibration.py, model/operating_points.py); None: not fitted.
    calibration: dict[str, Any] | None = None  # Calibration.to_card()
    operating_points: dict[str, Any] | None = None  # {"triage": {...}, "challenge": {...}}
    operating_curve: list[list[float | None]] | None = None  # [threshold, sensitivity, specificity], ...

    def to_dict(self) -> dict[str, Any]:
        values = {
            "format_version": CARD_FORMAT_VERSION,
            "network": self.network.to_dict(),
            "normalisation": self.normalisation,
            "settings": self.settings,
            "training": self.training,
            "metrics": self.metrics,
            "created": self.created,
        }
        fitted = {"calibration": self.calibration, "operating_points": self.operating_points,
                  "operating_curve": self.operating_curve}
        return {**values, **{key: value for key, value in fitted.items() if value is not None}}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelCard:
        version = values.get("format_version", CARD_FORMAT_VERSION)
        if version != CARD_FORMAT_VERSION:
            raise ValueError(f"model card format {version} is not supported (expected {CARD_FORMAT_VERSION})")
        card = cls(
            network=NetworkConfig.from_dict(values["network"]),
            normalisation=dict(values.get("normalisation") or default_normalisation()),
            settings=dict(values.get("settings") or {}),
            training=dict(values.get("training") or {}),
            metrics=dict(values.get("metrics") or {}),
            created=str(values.get("created", "")),
            calibration=values.get("calibration"),
            operating_points=values.get("operating_points"),
            operating_curve=values.get("operating_curve"),
        )
        card.fitted()  # a malformed calibration or operating point refuses the card (ValueError)
        return card

    def fitted(self) -> tuple[Calibration | None, OperatingPoints]:
        """The card's calibration (None when not fitted) and operating points; ValueError when malformed."""
        calibration = None if self.calibration is None else Calibration.from_card(self.calibration)
        return calibration, OperatingPoints.from_card(self.to_dict())


def save_card(path: Path | str, card: ModelCard) -> Path:
    """Write the card beside a checkpoint (or as the card file named), atomically; returns its path."""
    _, card_path = checkpoint_paths(path)
    atomic_write_text(card_path, json.dumps(card.to_dict(), indent=2) + "\n")
    return card_path


def load_card(path: Path | str) -> ModelCard:
    """The model card beside a checkpoint (or the card file itself)."""
    _, card_path = checkpoint_paths(path)
    if not card_path.is_file():
        raise CheckpointError(card_path, "model card (JSON) not found beside the weights")
    try:
        return ModelCard.from_dict(json.loads(card_path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(card_path, f"model card is not valid JSON ({err})") from None
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(card_path, f"model card is incomplete or malformed ({err})") from None
