"""Running the segmentation network on radiographs: a fixed, timed pipeline of stages.

pre-process (`pipeline.prepare_batch`: resize to the network's input size, normalise) -> network
(`pipeline.run_network`, optional flip TTA) -> post-process (probability back at image resolution,
triplet thresholds). Each stage is timed and the timings travel with the result; `cancel()` is
checked between stages so a UI worker can stop. Training and tuning use the same two pipeline
functions, so what the model card reports is what this class computes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pneumoviewer.errors import CancelCheck, raise_if_cancelled
from pneumoviewer.model.card import CheckpointError
from pneumoviewer.model.checkpoint import load_checkpoint
from pneumoviewer.model.identity import checkpoint_paths
from pneumoviewer.model.network import select_device
from pneumoviewer.model.onnx_runtime import OnnxNetwork, try_onnx_network
from pneumoviewer.model.operating_points import flagged
from pneumoviewer.model.pipeline import InputSpec, prepare_batch, run_network
from pneumoviewer.model.postprocess import InferenceSettings, postprocess
from pneumoviewer.model.prediction import Prediction
from pneumoviewer.paths import default_model_path


class Predictor:
    """One loaded model with its settings. Thread-safe to call; load once (see `default`)."""

    def __init__(
        self,
        checkpoint: Path,
        settings: InferenceSettings | None = None,
        device: torch.device | str | None = None,
        runtime: str = "auto",
    ) -> None:
        """`runtime`: "auto" runs the network stage on ONNX Runtime when on the CPU and available
        (see model/onnx_runtime.py), "torch" always on PyTorch; `self.runtime` says which is used."""
        if runtime not in ("auto", "torch"):
            raise ValueError(f"runtime must be 'auto' or 'torch', got {runtime!r}")
        started = time.perf_counter()
        self.checkpoint = Path(checkpoint)
        # No device given: CUDA if present, else the CPU with all cores but one (`select_device`).
        self.network, self.card = load_checkpoint(self.checkpoint, device=device or select_device())
        self.network.eval()
        self.device = next(self.network.parameters()).device
        self.settings = settings if settings is not None else InferenceSettings.from_dict(self.card.settings)
        # The calibration and the operating points (load_card refused a malformed one).
        self.calibration, self.operating_points = self.card.fitted()
        self.input_spec = InputSpec.from_card(self.card)
        self.input_size = self.input_spec.size
        self._onnx: OnnxNetwork | None = None
        if runtime == "auto" and self.device.type == "cpu":
            weights_file, _ = checkpoint_paths(self.checkpoint)
            input_shape = (self.input_spec.channels, self.input_size, self.input_size)
            self._onnx = try_onnx_network(self.network, weights_file, self.card.network.to_dict(), input_shape)
        self.runtime = "onnxruntime" if self._onnx is not None else "torch"
        if self.device.type == "cpu":
            # Channels-last convolutions are ~1.3-1.7x faster on CPU (benchmarks/bench_model.py); the
            # PyTorch module still runs Grad-CAM, and the network stage when ONNX Runtime is absent.
            self.network = self.network.to(memory_format=torch.channels_last)
        # Inference mode tensors and module state are shared; one forward at a time per predictor.
        self.lock = threading.Lock()
        self.load_seconds = time.perf_counter() - started

    @classmethod
    def default(cls) -> Predictor:
        """The bundled model, loaded on first use and reused while its file is unchanged."""
        return cls.cached(default_model_path())

    @classmethod
    def cached(cls, checkpoint: Path) -> Predictor:
        """A predictor for `checkpoint`, shared with earlier callers unless its files changed since."""
        path = Path(checkpoint).resolve()
        weights_file, card_file = checkpoint_paths(path)
        key = (path, _modified_ns(weights_file), _modified_ns(card_file))
        with _CACHE_LOCK:
            predictor = _CACHE.get(key)
            if predictor is None:
                predictor = cls(path)
                for stale in [k for k in _CACHE if k[0] == path]:
                    del _CACHE[stale]
                _CACHE[key] = predictor
            return predictor

    @classmethod
    def chosen_or_default(
        cls, checkpoint: Path, bundled: Path | None = None
    ) -> tuple[Predictor, CheckpointError | None]:
        """The model the user chose; if it cannot be used (refused, damaged, not matching its card),
        the bundled model (`bundled`, default the package's) with the reason. A bundled model that
        fails too raises its CheckpointError."""
        try:
            return cls.cached(checkpoint), None
        except CheckpointError as error:
            return cls.cached(bundled or default_model_path()), error

    def pneumothorax_probability(self, score: float) -> float:
        """The calibrated probability of a triage score (the score itself without a calibration)."""
        return score if self.calibration is None else self.calibration.probability(score)

    # -- stages ------------------------------------------------------------------------------

    def preprocess(self, pixels: np.ndarray) -> torch.Tensor:
        """Display-ready pixels (float HxW in [0, 1]) -> normalised (1, C, S, S) network input."""
        return prepare_batch([pixels], self.input_spec)

    def run_network(self, batch: torch.Tensor, tta: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, S, S) input -> mask probabilities (B, S, S) and presence probabilities (B,)."""
        with self.lock:
            return run_network(self._onnx or self.network, batch, tta, device=self.device)

    # -- public calls ---------------------------------------------------------------------------

    def predict(
        self,
        pixels: np.ndarray,
        cancel: CancelCheck | None = None,
        settings: InferenceSettings | None = None,
    ) -> Prediction:
        """Predict one image (`DicomImage.pixels`); `settings` overrides the model's for this call."""
        return self.predict_batch([pixels], cancel=cancel, settings=settings, batch_size=1)[0]

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        cancel: CancelCheck | None = None,
        settings: InferenceSettings | None = None,
        batch_size: int = 1,
    ) -> list[Prediction]:
        """Predict several images, `batch_size` at a time through the network.

        On a CPU, batches do not raise throughput (benchmarks/bench_model.py), hence the default of 1;
        on a GPU they do. Each prediction's "network" timing is its share of its batch's forward pass.
        """
        settings = settings if settings is not None else self.settings
        predictions: list[Prediction] = []
        for start in range(0, len(images), max(1, batch_size)):
            chunk = images[start : start + max(1, batch_size)]
            predictions.extend(self._predict_chunk(chunk, cancel, settings))
        return predictions

    def _predict_chunk(
        self, chunk: Sequence[np.ndarray], cancel: CancelCheck | None, settings: InferenceSettings
    ) -> list[Prediction]:
        raise_if_cancelled(cancel, "prediction cancelled")
        pre_seconds: list[float] = []
        inputs = []
        for pixels in chunk:
            started = time.perf_counter()
            inputs.append(self.preprocess(pixels))
            pre_seconds.append(time.perf_counter() - started)
        raise_if_cancelled(cancel, "prediction cancelled")
        started = time.perf_counter()
        mask_probability, presence_probability = self.run_network(torch.cat(inputs), settings.tta)
        network_share = (time.perf_counter() - started) / len(chunk)
        raise_if_cancelled(cancel, "prediction cancelled")
        predictions = []
        for index, pixels in enumerate(chunk):
            started = time.perf_counter()
            presence = float(presence_probability[index])
            probability = upsample_probability(mask_probability[index], np.shape(pixels))
            result = postprocess(probability, presence, settings, network_map=mask_probability[index].numpy())
            timings = {"pre": pre_seconds[index], "network": network_share, "post": time.perf_counter() - started}
            predictions.append(Prediction(
                probability, result.mask, result.score, result.positive, self.pneumothorax_probability(result.score),
                flagged(result.score, self.operating_points.triage.threshold), timings, presence,
            ))
        return predictions


def upsample_probability(probability: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """(S, S) probabilities -> float32 numpy array of `shape` (bilinear), clipped to [0, 1]."""
    if tuple(probability.shape) != tuple(shape):
        resized = F.interpolate(probability[None, None], size=tuple(shape), mode="bilinear", align_corners=False)
        probability = resized[0, 0]
    return probability.clamp(0.0, 1.0).numpy().astype(np.float32, copy=False)


def _modified_ns(file: Path) -> int:
    return file.stat().st_mtime_ns if file.exists() else -1


_CACHE: dict[tuple[Path, int, int], Predictor] = {}  # (file, weights mtime, card mtime)
_CACHE_LOCK = threading.Lock()
