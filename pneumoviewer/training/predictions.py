"""Held-out predictions of a run (`<out>/oof.npz`): what later decisions are made on, across all folds.

With `--folds K --fold I` these are fold I's out-of-fold predictions; concatenating the K files gives
one prediction per primary image from a model that never trained on it, on which thresholds,
calibration, TTA and the epoch/recipe choice can be decided honestly. The file holds, per image:
`image_ids`, `positive` (ground truth), `presence` and `presence_tta` (presence-head probability
without and with flip TTA), `top_probability` and `top_probability_tta` ([N, len(top_pixel_counts)]:
the k-th highest pixel probability for each k of `top_pixel_counts`, counted at 1024² as
`InferenceSettings.presence_min_pixels` is: with the presence head these are the triage score's
inputs), `maps` and `maps_tta` (probability maps at the network's resolution, float16 [N,S,S]) and
`masks` (ground truth at that resolution, bool [N,S,S]); plus `fold`, `folds`, `epoch`, `input_size`.
`read_predictions` reads one back as a `HeldOut`; `HeldOut.concatenate` pools a campaign's folds.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.model.postprocess import InferenceSettings, presence_score
from pneumoviewer.training.data import TrainingDataError

PREDICTIONS_FILE = "oof.npz"
TOP_PIXEL_COUNTS = (250, 500, 1000, 2000, 3000, 5000)  # the tuning grid's presence_min_pixels


def top_probabilities(maps: np.ndarray) -> np.ndarray:
    """[N, len(TOP_PIXEL_COUNTS)]: each map's k-th highest probability, by `postprocess.presence_score`'s rule."""
    return np.array([
        [presence_score(probability, None, InferenceSettings(presence_min_pixels=count)) for count in TOP_PIXEL_COUNTS]
        for probability in maps
    ], dtype=np.float32)


def write_predictions(
    out: Path, image_ids: Sequence[str], masks: np.ndarray,
    without_tta: tuple[np.ndarray, np.ndarray], with_tta: tuple[np.ndarray, np.ndarray],
    fold: int | None, folds: int | None, epoch: int | None,
) -> Path:
    """Write `<out>/oof.npz` (see the module docstring); `without_tta`/`with_tta` are (maps, presence)."""
    (maps, presence), (maps_tta, presence_tta) = without_tta, with_tta
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        image_ids=np.array(list(image_ids)), positive=masks.reshape(len(masks), -1).any(axis=1), masks=masks,
        presence=presence.astype(np.float32), presence_tta=presence_tta.astype(np.float32),
        top_pixel_counts=np.array(TOP_PIXEL_COUNTS), top_probability=top_probabilities(maps),
        top_probability_tta=top_probabilities(maps_tta),
        maps=maps.astype(np.float16), maps_tta=maps_tta.astype(np.float16),
        fold=np.array(-1 if fold is None else fold), folds=np.array(0 if folds is None else folds),
        epoch=np.array(-1 if epoch is None else epoch), input_size=np.array(maps.shape[-1]),
    )
    path = Path(out) / PREDICTIONS_FILE
    atomic_write_bytes(path, buffer.getvalue())
    return path


@dataclass(frozen=True)
class HeldOut:
    """A run's held-out predictions as written by `write_predictions` (several runs: `concatenate`)."""

    image_ids: tuple[str, ...]
    positive: np.ndarray  # bool [N]
    masks: np.ndarray  # bool [N,S,S]
    maps: np.ndarray  # float16 [N,S,S]
    maps_tta: np.ndarray
    presence: np.ndarray  # float32 [N]
    presence_tta: np.ndarray
    fold: int  # -1 when the run was not one fold of a k-fold split, or for a concatenation
    folds: int

    def predictions(self, tta: bool) -> tuple[np.ndarray, np.ndarray]:
        """(maps as float32, presence-head probabilities), with or without flip TTA."""
        maps, presence = (self.maps_tta, self.presence_tta) if tta else (self.maps, self.presence)
        return maps.astype(np.float32), presence

    @classmethod
    def concatenate(cls, parts: Sequence[HeldOut]) -> HeldOut:
        if not parts:
            raise ValueError("no held-out predictions to pool")
        sizes = {part.masks.shape[-1] for part in parts}
        if len(sizes) != 1:
            raise ValueError(f"held-out predictions at different input sizes ({sorted(sizes)}) cannot be pooled")
        def pooled(name: str) -> np.ndarray:
            return np.concatenate([getattr(part, name) for part in parts])

        return cls(
            tuple(image_id for part in parts for image_id in part.image_ids), pooled("positive"), pooled("masks"),
            pooled("maps"), pooled("maps_tta"), pooled("presence"), pooled("presence_tta"), fold=-1,
            folds=parts[0].folds,
        )


def read_predictions(run: Path) -> HeldOut:
    """`<run>/oof.npz` (or the file itself); a missing or damaged file raises `TrainingDataError` naming it."""
    path = Path(run)
    path = path / PREDICTIONS_FILE if path.is_dir() else path
    try:
        with np.load(path, allow_pickle=False) as stored:
            return HeldOut(
                tuple(str(image_id) for image_id in stored["image_ids"]), stored["positive"].astype(bool),
                stored["masks"].astype(bool), stored["maps"], stored["maps_tta"], stored["presence"],
                stored["presence_tta"], int(stored["fold"]), int(stored["folds"]),
            )
    except (OSError, KeyError, ValueError) as error:
        raise TrainingDataError(path, f"cannot read these held-out predictions ({error})") from None
