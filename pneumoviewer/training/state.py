"""The resumable training state: one file, `<out>/last-state.pt`, rewritten atomically every few minutes.

It holds everything a run needs to continue exactly where it stopped, mid-epoch included: the weights,
the optimizer (and AMP scaler), how many epochs and steps within the current epoch are done, the
losses and seconds of the epoch so far, the history and commands, and the random streams (torch's
global generator for dropout, numpy's and Python's, and the augmentation's own pair). The epoch's
sampler order is not stored: it is redrawn from the seed and the steps already done are skipped.
The file is written to a temporary name and renamed (`io.atomic`), so a kill mid-save leaves the
previous state. Only tensors and plain Python values are stored, so it loads with `weights_only=True`.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.model.card import CheckpointError

STATE_FILE = "last-state.pt"
_FORMAT = 2


@dataclass
class AugmentationRandom:
    """The one numpy/Python generator pair every augmentation transform draws from (see `data.seed_augmentation`)."""

    numpy: np.random.Generator
    python: random.Random


@dataclass
class TrainingState:
    """Where a run stands; `epoch` epochs are finished and `step` steps of the next one are done."""

    run: dict[str, Any]  # what must not change on resume: seed, split, batch size, steps per epoch, input size
    epoch: int = 0
    step: int = 0
    best_score: float = -float("inf")
    history: list[dict[str, Any]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    epoch_seconds: float = 0.0


def save_state(
    out: Path, state: TrainingState, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler, augmentation_random: AugmentationRandom, averaged: torch.nn.Module | None = None,
) -> None:
    """Write `<out>/last-state.pt` atomically (with the weight average's state when the run keeps one)."""
    payload = {
        "format": _FORMAT,
        "run": state.run,
        "epoch": state.epoch,
        "step": state.step,
        "best_score": state.best_score,
        "history": state.history,
        "commands": state.commands,
        "epoch_losses": state.epoch_losses,
        "epoch_seconds": state.epoch_seconds,
        "model": {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "averaged": None if averaged is None else {
            name: tensor.detach().cpu() for name, tensor in averaged.state_dict().items()},
        "random": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_legacy_state(),
            "python": random.getstate(),
            "augmentation_numpy": augmentation_random.numpy.bit_generator.state,
            "augmentation_python": augmentation_random.python.getstate(),
        },
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(Path(out) / STATE_FILE, buffer.getvalue())


def load_state(out: Path, run: dict[str, Any], device: torch.device) -> tuple[TrainingState, dict[str, Any]] | None:
    """The saved state and its raw payload, or None when `out` holds none (a fresh start).

    Raises `CheckpointError` naming the file when it is damaged or was made by a different run
    (another seed, split, batch size, steps per epoch or input size).
    """
    path = Path(out) / STATE_FILE
    if not path.is_file():
        return None
    payload = _read_payload(path, device)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise CheckpointError(path, "training state of an older format: it cannot be resumed mid-epoch")
    stored = payload["run"]
    differences = {key: (stored.get(key), value) for key, value in run.items() if stored.get(key) != value}
    if differences:
        described = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in sorted(differences.items()))
        raise CheckpointError(path, f"made by a different run ({described}); use another --out or the same settings")
    state = TrainingState(
        run=dict(payload["run"]), epoch=int(payload["epoch"]), step=int(payload["step"]),
        best_score=float(payload["best_score"]), history=list(payload["history"]),
        commands=list(payload["commands"]), epoch_losses=[float(x) for x in payload["epoch_losses"]],
        epoch_seconds=float(payload["epoch_seconds"]),
    )
    return state, payload


def write_compact_state(source: Path, target: Path) -> None:
    """A copy of a saved state with the optimizer's moment estimates in bfloat16, written atomically.

    For carrying a run to another machine through git (`training.campaign.park`): the moments are two
    thirds of the file, and `Optimizer.load_state_dict` casts them back to the parameters' float32 on
    resume. The weights, counters and random streams stay exact, so the run goes on where it was, with
    its moments rounded to bfloat16's 8 bits (a resume from the copy is close to, not bit-identical with,
    one from the original).
    """
    payload = _read_payload(source, torch.device("cpu"))
    try:
        for moments in payload["optimizer"]["state"].values():
            for name in ("exp_avg", "exp_avg_sq"):
                if name in moments:
                    moments[name] = moments[name].to(torch.bfloat16)
    except (KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(source, f"training state is damaged ({type(err).__name__}: {err})") from None
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(target, buffer.getvalue())


def _read_payload(path: Path, device: torch.device) -> Any:
    """A state file's raw payload (tensors only, never unpickled code); CheckpointError naming it when damaged."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load fails in many ways on a damaged file
        raise CheckpointError(path, f"training state is damaged ({type(err).__name__}: {err})") from None


def restore_training(
    payload: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
    averaged: torch.nn.Module | None = None,
) -> None:
    """Load the weights, the optimizer, the AMP scaler and the weight average of a loaded state into the live
    objects (a state with a weight average was made by a run with `ema_decay`, which `load_state` checks)."""
    model.load_state_dict(payload["model"])
    if averaged is not None:
        averaged.load_state_dict(payload["averaged"])
    optimizer.load_state_dict(payload["optimizer"])
    if payload["scaler"]:
        scaler.load_state_dict(payload["scaler"])


def restore_random(payload: dict[str, Any], augmentation_random: AugmentationRandom | None) -> None:
    """Put the random streams back where they were when the state was saved.

    The augmentation pair is restored in place (the transforms keep their references) when given;
    pass None at an epoch's start, where the augmentation is freshly seeded for the epoch.
    """
    streams = payload["random"]
    torch.set_rng_state(streams["torch"].cpu())
    if streams["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in streams["cuda"]])
    kind, keys, position, has_gauss, cached_gaussian = streams["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    random.setstate(_as_tuple(streams["python"]))
    if augmentation_random is not None:
        augmentation_random.numpy.bit_generator.state = streams["augmentation_numpy"]
        augmentation_random.python.setstate(_as_tuple(streams["augmentation_python"]))


def _numpy_legacy_state() -> tuple[str, torch.Tensor, int, int, float]:
    """`np.random.get_state()` with its key array as a tensor (numpy arrays do not load with weights_only)."""
    state = np.random.get_state(legacy=True)
    assert isinstance(state, tuple)  # legacy=True: the (kind, keys, position, has_gauss, cached) tuple
    kind, keys, position, has_gauss, cached_gaussian = state
    return str(kind), torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached_gaussian)


def _as_tuple(value: Any) -> Any:
    """Python's `random` state is nested tuples; undo any tuple -> list conversion on the way through torch."""
    return tuple(_as_tuple(item) for item in value) if isinstance(value, (list, tuple)) else value
