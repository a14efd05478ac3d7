"""The one way display pixels become network inputs and network outputs become probabilities.

`prepare_batch` turns display pixels (`DicomImage.pixels`: float HxW in [0, 1]) into the network's
normalised input as the model card describes it (`InputSpec`): an area resize to the input size,
snapped to the 8-bit grid, `(x - mean) / std`, the grey channel repeated to the card's channel
count. `run_network` runs a network on such a batch, with or without horizontal-flip TTA. The app
(`Predictor`), training (its cache, its augmented examples and its validation predictions), threshold
tuning and `finalise` all go through these two functions, so a model card's figures come from the pipeline the app runs.
The training cache keeps `resize_to_input`'s output as 8-bit pixels, so every network has only ever
seen inputs on that grid; `prepare_batch` snaps the app's resized pixels to it too (`INPUT_LEVELS`).
Without the snap, a difference of at most 1/510 of the pixel range moved v2's presence probability by
up to 0.054 (mean 0.006) on fold 0's held-out films and changed 3 of their 216 challenge calls
(docs/model.md, "One input grid").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pneumoviewer.model.card import ModelCard

# The grey levels of every network input: the training cache's 8 bits (`training.data.quantise`).
INPUT_LEVELS = 255

# A callable like `PneumothoraxNet` or `OnnxNetwork`: (B, C, S, S) -> (mask logits (B, 1, S, S), presence logits (B,)).
Network = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class InputSpec:
    """What the network expects, from its model card: input size, normalisation and channel count."""

    size: int
    mean: float
    std: float
    channels: int = 1

    @classmethod
    def from_card(cls, card: ModelCard) -> InputSpec:
        return cls(
            size=int(card.network.input_size),
            mean=float(card.normalisation["mean"]),
            std=float(card.normalisation["std"]),
            channels=int(card.network.in_channels),
        )


def resize_to_input(image: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, size, size): area averaging when shrinking (no aliasing), bilinear when growing."""
    height, width = image.shape[-2:]
    if (height, width) == (size, size):
        return image
    mode = "area" if height >= size and width >= size else "bilinear"
    return F.interpolate(image, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


def resize_pixels(pixels: np.ndarray, size: int) -> np.ndarray:
    """One HxW array (pixels in [0, 1], or a 0/1 mask) -> float32 size x size, by `resize_to_input`."""
    return _as_tensor(pixels, size)[0, 0].numpy()


def prepare_batch(images: Sequence[np.ndarray] | np.ndarray, spec: InputSpec) -> torch.Tensor:
    """Display pixels (each a float HxW in [0, 1], any size) -> the normalised (B, C, S, S) network input.

    Resized, then rounded to `INPUT_LEVELS` grey levels as the training cache stores them (a no-op on
    the cache's own pixels, dequantised), then normalised.
    """
    resized = [_as_tensor(pixels, spec.size) for pixels in images]
    if not resized:
        raise ValueError("no images to prepare")
    levels = torch.round(torch.cat(resized).clamp(0.0, 1.0) * INPUT_LEVELS) / INPUT_LEVELS
    batch = (levels - spec.mean) / spec.std
    if spec.channels > 1:
        batch = batch.expand(-1, spec.channels, -1, -1)
    return batch.contiguous()


def run_network(
    network: Network, batch: torch.Tensor, tta: bool, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, S, S) input -> mask probabilities (B, S, S) and presence probabilities (B,), float32 on the CPU.

    With `tta` the horizontally mirrored input is run too and the probabilities averaged (the mirrored
    map flipped back). Horizontal only: chest anatomy is left-right mirrored, never upside down.
    The caller puts a PyTorch network in eval mode; `device` is where the batch goes (default: as given).
    """
    if device is not None:
        batch = batch.to(device)
    with torch.inference_mode():
        mask_probability, presence_probability = _probabilities(network, batch)
        if tta:
            flipped_mask, flipped_presence = _probabilities(network, batch.flip(-1))
            mask_probability = (mask_probability + flipped_mask.flip(-1)) / 2
            presence_probability = (presence_probability + flipped_presence) / 2
    return mask_probability.float().cpu(), presence_probability.float().cpu()


def _probabilities(network: Network, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mask_logits, presence_logits = network(batch)
    return torch.sigmoid(mask_logits[:, 0]), torch.sigmoid(presence_logits.reshape(len(batch)))


def _as_tensor(pixels: np.ndarray, size: int) -> torch.Tensor:
    """One HxW array -> float32 (1, 1, size, size) by `resize_to_input`."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or min(pixels.shape) < 2:
        raise ValueError(f"expected a 2-D grey image, got an array of shape {pixels.shape}")
    return resize_to_input(torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))[None, None], size)
