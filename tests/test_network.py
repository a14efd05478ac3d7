"""The network's contract: shapes, the presence head, and the ImageNet encoder initialisation."""

from __future__ import annotations

import pytest
import torch
from conftest import IMAGENET_WEIGHTS
from torch import nn

from pneumoviewer.model.card import NetworkConfig
from pneumoviewer.model.network import build_network, freeze_encoder_batchnorm, load_imagenet_encoder, select_device


def test_forward_returns_mask_and_presence_logits() -> None:
    model = build_network(NetworkConfig(input_size=64)).eval()
    with torch.no_grad():
        mask_logits, presence_logits = model(torch.zeros(3, 1, 64, 64))
    assert mask_logits.shape == (3, 1, 64, 64)
    assert presence_logits.shape == (3,)


def test_network_without_presence_head_scores_by_its_strongest_pixel() -> None:
    model = build_network(NetworkConfig(input_size=64, presence_head=False)).eval()
    with torch.no_grad():
        mask_logits, presence_logits = model(torch.randn(2, 1, 64, 64))
    assert torch.equal(presence_logits, mask_logits.flatten(1).amax(dim=1))


def test_config_round_trips_through_a_dict() -> None:
    config = NetworkConfig(input_size=320, decoder_channels=(128, 64, 32, 16, 8))
    assert NetworkConfig.from_dict(config.to_dict()) == config


@pytest.mark.skipif(not IMAGENET_WEIGHTS.is_file(), reason="shared ImageNet weights not present")
def test_imagenet_encoder_sums_rgb_kernels_for_grey_input() -> None:
    from safetensors.torch import load_file

    model = build_network(NetworkConfig(input_size=64))
    load_imagenet_encoder(model, IMAGENET_WEIGHTS)
    rgb = load_file(str(IMAGENET_WEIGHTS))["features.0.0.weight"]
    grey_kernel = model.unet.encoder.state_dict()["features.0.0.weight"]
    assert torch.allclose(grey_kernel, rgb.sum(dim=1, keepdim=True))
    # A grey image through the one-channel encoder equals the RGB network on the replicated image.
    import torchvision

    reference = torchvision.models.mobilenet_v2()
    reference.load_state_dict(load_file(str(IMAGENET_WEIGHTS)))
    image = torch.rand(1, 1, 64, 64)
    model.eval()
    reference.eval()
    with torch.no_grad():
        ours = model.unet.encoder(image)[-1]
        theirs = reference.features(image.repeat(1, 3, 1, 1))
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_frozen_encoder_batchnorm_keeps_running_statistics() -> None:
    model = build_network(NetworkConfig(input_size=64))
    model.train()
    freeze_encoder_batchnorm(model)
    batchnorms = [m for m in model.unet.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    before = batchnorms[0].running_mean.clone()
    model(torch.randn(2, 1, 64, 64) * 5 + 3)
    assert all(not m.training for m in batchnorms)
    assert torch.equal(batchnorms[0].running_mean, before)
    assert model.unet.decoder.training


def test_select_device_is_cpu_without_cuda() -> None:
    threads = torch.get_num_threads()
    try:
        assert select_device(threads=1).type == "cpu"
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
