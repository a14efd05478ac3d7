"""Model files: weights in safetensors with a JSON model card beside them; nothing is ever unpickled.

A checkpoint named `default` is the pair `default.safetensors` (tensors only, fp16 or fp32) and
`default.json` (the `ModelCard`: architecture, input normalisation, inference settings, how it was
trained and how well it does). A PyTorch `.pth`/`.pt` file is accepted only through
`torch.load(weights_only=True)`, which refuses arbitrary objects, and still needs the JSON card.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.model.calibration import Calibration
from pneumoviewer.model.identity import checkpoint_paths
from pneumoviewer.model.network import (
    NORMALISATION_MEAN,
    NORMALISATION_STD,
    NetworkConfig,
    PneumothoraxNet,
    build_network,
)
from pneumoviewer.model.operating_points import OperatingPoints

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


def save_checkpoint(path: Path | str, model: nn.Module, card: ModelCard, half: bool = True) -> tuple[Path, Path]:
    """Write `<path>.safetensors` (fp16 when `half`) and `<path>.json`, each atomically.

    Returns the two paths. A crash mid-write leaves any previous checkpoint intact.
    """
    from safetensors.torch import save

    weights_path, card_path = checkpoint_paths(path)
    if weights_path.suffix != ".safetensors":
        raise CheckpointError(weights_path, "checkpoints are written as .safetensors only")
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        tensors[name] = tensor.contiguous()
    atomic_write_bytes(weights_path, save(tensors, metadata={"format": "pt"}))
    atomic_write_bytes(card_path, (json.dumps(card.to_dict(), indent=2) + "\n").encode("utf-8"))
    return weights_path, card_path


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


def load_checkpoint(path: Path | str, device: torch.device | str | None = None) -> tuple[PneumothoraxNet, ModelCard]:
    """The network (float32, eval mode, on `device`, default CPU) and its card.

    Raises `CheckpointError` for a missing, truncated, corrupt or mismatched file.
    """
    weights_path, _ = checkpoint_paths(path)
    if not weights_path.is_file():
        raise CheckpointError(weights_path, "model file not found")
    card = load_card(path)
    state = _read_state_dict(weights_path)
    try:
        model = build_network(card.network)
    except Exception as err:  # noqa: BLE001 - an unknown encoder name etc. in the card: any error means refuse it
        raise CheckpointError(weights_path, f"cannot build the network the card describes ({err})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or mismatched:
        details = [f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                   for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched))
                   if keys]
        raise CheckpointError(
            weights_path, "weights do not match the architecture in the card (" + "; ".join(details) + ")"
        )
    state = {k: v.to(expected[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    model.eval()
    return model.to(torch.device(device) if device is not None else torch.device("cpu")), card


def _read_state_dict(weights_path: Path) -> dict[str, torch.Tensor]:
    if weights_path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(weights_path))
        except Exception as err:  # noqa: BLE001 - SafetensorError, OSError...: truncated or not a safetensors file
            raise CheckpointError(weights_path, f"model file is damaged or not a safetensors file ({err})") from None
    try:
        with warnings.catch_warnings():  # torch's note on a foreign pickle protocol: noise beside the refusal
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            loaded = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - UnpicklingError and more for anything beyond plain tensors
        raise CheckpointError(
            weights_path, f"model file refused: not a plain weights file, or damaged ({type(err).__name__})"
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(weights_path, "model file does not hold a dictionary of weights")
    return loaded
