"""Grad-CAM heatmaps for the segmentation output: where the network's evidence for its mask lies.

The target is the sum of mask logits over the predicted region (over the whole image when the
prediction is empty: "what pushes towards pneumothorax anywhere"). Heat is the element-wise product
of the chosen layer's activations and the target's gradient, summed over channels and rectified
(the element-wise Grad-CAM variant, a.k.a. HiResCAM). Classic Grad-CAM first averages the gradient
over the whole map, which paints every place a channel fires, including places the output does not
depend on; a drain outside the lesion would light up whether or not it drives the prediction. The
element-wise product is a first-order account of each location's contribution, so the heat follows
what the output actually uses (see tests/test_cam.py).

Default layer: the U-Net decoder's first block. The last encoder stage (1/32 of the input, 8x8 at
256^2) is too coarse to tell a apical rim from the ribs beside it; the first decoder block is twice
as fine, already fuses the 1/16 skip features, and is still upstream of the mask-shaped last blocks
(whose maps just redraw the mask).
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pneumoviewer.model.inference import Predictor
from pneumoviewer.model.pipeline import resize_pixels
from pneumoviewer.model.postprocess import postprocess

DEFAULT_LAYER = "unet.decoder.blocks.0"


def grad_cam(
    predictor: Predictor,
    pixels: np.ndarray,
    target_mask: np.ndarray | None = None,
    layer: str | nn.Module | None = None,
) -> np.ndarray:
    """Heatmap (float32, the image's HxW, in [0, 1]) for `predictor` on `pixels` (`DicomImage.pixels`).

    `target_mask` (bool, image resolution) chooses the region to explain, e.g. a mask the reader drew;
    by default it is the predictor's own post-processed mask. `layer` is a module of the network or
    its dotted name (default: the decoder's first block).
    """
    inputs = predictor.preprocess(pixels).to(predictor.device)
    module = _find_layer(predictor.network, layer or DEFAULT_LAYER)
    if target_mask is not None:
        target_mask = np.asarray(target_mask, dtype=bool)
        if target_mask.shape != np.shape(pixels):
            raise ValueError(f"target mask shape {target_mask.shape} differs from the image's {np.shape(pixels)}")
        # Resized as the training cache resizes label masks, so the region means the same to the network.
        target = torch.from_numpy(resize_pixels(target_mask.astype(np.float32), predictor.input_size) >= 0.5)
    else:
        target = None
    with predictor.lock:
        heat = class_activation_map(predictor.network, inputs, module, target, predictor, size=np.shape(pixels))
    return heat.cpu().numpy().astype(np.float32, copy=False)


def class_activation_map(
    network: nn.Module,
    inputs: torch.Tensor,
    layer: nn.Module,
    target: torch.Tensor | None = None,
    predictor: Predictor | None = None,
    size: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Heat in [0, 1], peak 1, for a (1, C, S, S) input: the lower-level call, for any network.

    `network(inputs)` returns mask logits (1, 1, S, S) or `(mask_logits, presence_logits)`. `target` (bool
    S x S) is the region whose summed logits are explained; when None it is the predicted mask
    (post-processed with `predictor`'s settings when given, else logits > 0), or the whole image if
    that is empty. If `layer` returns several tensors (an encoder's feature list), the last is used.
    The heat is interpolated (bilinear) from the layer's grid to `size`, default (S, S).
    """
    captured: list[torch.Tensor] = []

    def keep_activation(_module: nn.Module, _inputs: object, output: object) -> None:
        captured.append(cast(torch.Tensor, output[-1] if isinstance(output, (list, tuple)) else output))

    handle = layer.register_forward_hook(keep_activation)
    try:
        with torch.enable_grad():
            # Gradients are needed w.r.t. activations only; requiring them on the input builds the
            # graph even when the weights are frozen, and autograd.grad leaves weight .grad untouched.
            inputs = inputs.detach().clone().requires_grad_(True)
            output = network(inputs)
            mask_logits, presence_logits = output if isinstance(output, tuple) else (output, None)
            mask_logits = mask_logits[0, 0]
            region = _explained_region(mask_logits.detach(), presence_logits, target, predictor)
            (gradient,) = torch.autograd.grad(mask_logits[region].sum(), captured[-1])
    finally:
        handle.remove()
    activation = captured[-1].detach()
    heat = F.relu((activation * gradient).sum(dim=1, keepdim=True))
    heat = F.interpolate(heat, size=tuple(size or mask_logits.shape), mode="bilinear", align_corners=False)[0, 0]
    peak = heat.max()
    return heat / peak if peak > 0 else heat


def _explained_region(
    mask_logits: torch.Tensor,
    presence_logits: torch.Tensor | None,
    target: torch.Tensor | None,
    predictor: Predictor | None,
) -> torch.Tensor:
    if target is None:
        if predictor is not None:
            probability = torch.sigmoid(mask_logits).float().cpu().numpy()
            presence = None if presence_logits is None else float(torch.sigmoid(presence_logits.detach()).flatten()[0])
            target = torch.from_numpy(postprocess(probability, presence, predictor.settings).mask)
        else:
            target = mask_logits > 0
    target = target.to(mask_logits.device)
    return target if bool(target.any()) else torch.ones_like(target, dtype=torch.bool)


def _find_layer(network: nn.Module, layer: str | nn.Module) -> nn.Module:
    if isinstance(layer, nn.Module):
        return layer
    modules = dict(network.named_modules())
    if layer not in modules:
        raise ValueError(f"the network has no layer named {layer!r}")
    return modules[layer]
