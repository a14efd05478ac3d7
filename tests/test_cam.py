from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pneumoviewer.model.cam import class_activation_map, grad_cam
from pneumoviewer.model.inference import Predictor


class RegionOnlyNet(nn.Module):
    """Blur features everywhere, but mask logits that read them inside `region` only."""

    def __init__(self, region: torch.Tensor) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        nn.init.constant_(self.features.weight, 1 / 9)
        self.register_buffer("region", region.float())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask_logits = F.relu(self.features(x)).sum(dim=1, keepdim=True) * self.region
        return mask_logits, mask_logits.flatten(1).amax(dim=1)


def _two_blobs(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    inside = (rows - 20) ** 2 + (cols - 20) ** 2 <= 36
    outside = (rows - 44) ** 2 + (cols - 44) ** 2 <= 36  # identical blob the output never reads
    region = (rows < 32) & (cols < 32)
    return (inside | outside).float()[None, None], region


def test_heat_sits_where_the_output_depends_even_when_features_fire_elsewhere() -> None:
    image, region = _two_blobs()
    network = RegionOnlyNet(region).eval()
    whole_image = torch.ones(64, 64, dtype=torch.bool)
    heat = class_activation_map(network, image, network.features, target=whole_image)
    assert heat.shape == (64, 64) and float(heat.max()) == pytest.approx(1.0)
    assert float(heat[region].sum() / heat.sum()) > 0.95
    # The predicted region (logits > 0) is explained by default: the blob inside the region.
    default = class_activation_map(network, image, network.features)
    assert float(default[region].sum() / default.sum()) > 0.95


@pytest.fixture(scope="module")
def predictor(random_checkpoint: Path) -> Predictor:
    return Predictor(random_checkpoint, runtime="torch")  # Grad-CAM always runs on the PyTorch module


def _chest_like(shape: tuple[int, int]) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (0.5 + 0.3 * np.sin(rows / 7.0) * np.cos(cols / 11.0)).astype(np.float32)


def test_grad_cam_on_the_real_network_is_an_image_sized_unit_map(predictor: Predictor) -> None:
    pixels = _chest_like((120, 100))
    heat = grad_cam(predictor, pixels)
    assert heat.dtype == np.float32 and heat.shape == (120, 100)
    assert np.isfinite(heat).all() and 0.0 <= heat.min() and heat.max() == pytest.approx(1.0)
    assert all(p.grad is None for p in predictor.network.parameters())  # no weight gradients left behind
    assert not any(m._forward_hooks for m in predictor.network.modules())  # hooks removed


def test_explaining_one_corner_puts_the_heat_near_that_corner(predictor: Predictor) -> None:
    pixels = _chest_like((128, 128))
    target = np.zeros((128, 128), bool)
    target[8:40, 8:40] = True
    heat = grad_cam(predictor, pixels, target_mask=target)
    near, far = heat[:64, :64].sum(), heat[64:, 64:].sum()
    assert near > 3 * far


def test_a_layer_returning_a_feature_list_uses_its_deepest_map(predictor: Predictor) -> None:
    heat = grad_cam(predictor, _chest_like((128, 128)), layer="unet.encoder")
    assert heat.shape == (128, 128) and heat.max() == pytest.approx(1.0)


def test_bad_requests_are_refused(predictor: Predictor) -> None:
    pixels = _chest_like((64, 64))
    with pytest.raises(ValueError, match="shape"):
        grad_cam(predictor, pixels, target_mask=np.ones((32, 32), bool))
    with pytest.raises(ValueError, match="no layer named"):
        grad_cam(predictor, pixels, layer="decoder.nope")
