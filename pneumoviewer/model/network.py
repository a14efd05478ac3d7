"""The segmentation network: a U-Net with a presence (classification) head, and the device it runs on.

`build_network(config)` returns a module whose `forward(x)` takes a normalised batch
`[B, in_channels, S, S]` (see `pipeline.prepare_batch`) and returns `(mask_logits [B, 1, S, S], presence_logits [B])`.
Both are logits: apply `torch.sigmoid` for probabilities.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from pneumoviewer.model.card import NetworkConfig


class PneumothoraxNet(nn.Module):
    """smp U-Net whose forward returns `(mask_logits [B,1,S,S], presence_logits [B])`.

    Without a presence head, presence_logits is the maximum mask logit per image, so callers never
    need to special-case the architecture.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        import segmentation_models_pytorch as smp

        self.config = config
        aux_params = {"classes": 1, "dropout": config.presence_dropout} if config.presence_head else None
        self.unet = smp.Unet(
            encoder_name=config.encoder,
            encoder_weights=None,
            in_channels=config.in_channels,
            classes=1,
            decoder_channels=config.decoder_channels,
            aux_params=aux_params,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.presence_head:
            mask_logits, presence_logits = self.unet(x)
            return mask_logits, presence_logits.reshape(-1)
        mask_logits = self.unet(x)
        return mask_logits, mask_logits.flatten(1).amax(dim=1)


def build_network(config: NetworkConfig | None = None) -> PneumothoraxNet:
    """A randomly initialised network (no hub downloads); see `load_imagenet_encoder`."""
    return PneumothoraxNet(config or NetworkConfig())


def load_imagenet_encoder(model: PneumothoraxNet, path: Path) -> None:
    """Initialise the encoder from torchvision-layout MobileNetV2 ImageNet weights (safetensors).

    The 1000-class classifier is dropped; for a grey input the first convolution's RGB kernels are
    summed, which gives the same response to a grey image replicated into three channels.
    The BatchNorm layers of this file are folded (identity statistics): keep them in eval mode while
    fine-tuning (see `freeze_encoder_batchnorm`), or batch statistics would undo the pretraining.
    """
    from safetensors.torch import load_file

    weights = {k: v for k, v in load_file(str(path)).items() if not k.startswith("classifier.")}
    first_conv = "features.0.0.weight"
    in_channels = model.config.in_channels
    if first_conv in weights and weights[first_conv].shape[1] != in_channels:
        if in_channels != 1:
            raise ValueError(f"{path}: RGB encoder weights fit 1 or 3 input channels, not {in_channels}")
        weights[first_conv] = weights[first_conv].sum(dim=1, keepdim=True)
    # smp encoders override load_state_dict (and drop its report); the plain Module method reports.
    missing, unexpected = nn.Module.load_state_dict(model.unet.encoder, weights, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(
            f"{path}: encoder weights do not fit {model.config.encoder} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


def freeze_encoder_batchnorm(model: PneumothoraxNet) -> None:
    """Put the encoder's BatchNorm layers in eval mode (call after every `model.train()`).

    Their running statistics then stay the pretrained ones; their affine weights still learn.
    """
    for module in model.unet.encoder.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def select_device(threads: int | None = None) -> torch.device:
    """CUDA when present, else the CPU with `threads` (default: all cores but one, at least 1)."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if threads is None:
        threads = max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(threads)
    return torch.device("cpu")

