"""One inference pipeline: training, tuning and the app prepare images and run the network the same way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pneumoviewer.io.images import load_radiograph
from pneumoviewer.model.card import ModelCard, NetworkConfig, default_normalisation
from pneumoviewer.model.checkpoint import save_checkpoint
from pneumoviewer.model.inference import Predictor
from pneumoviewer.model.network import build_network
from pneumoviewer.model.pipeline import (
    INPUT_LEVELS,
    InputSpec,
    prepare_batch,
    resize_pixels,
    run_network,
)
from pneumoviewer.training import data
from pneumoviewer.training.train import predict_maps

REPO_ROOT = Path(__file__).resolve().parent.parent


def _checkpoint(folder: Path, input_size: int, mean: float = 0.449, std: float = 0.226) -> Path:
    torch.manual_seed(0)
    config = NetworkConfig(input_size=input_size, decoder_channels=(32, 16, 16, 8, 8))
    card = ModelCard(network=config, normalisation={**default_normalisation(), "mean": mean, "std": std})
    weights, _ = save_checkpoint(folder / f"net{input_size}", build_network(config).eval(), card, half=False)
    return weights


@pytest.fixture(scope="module")
def real_files(data_dir: Path) -> list[Path]:
    """Three SIIM DICOMs and a PNG and a JPEG export from siim-extra (all as stored on disk)."""
    dicoms = sorted((data_dir / "siim").rglob("*.dcm"))[:3]
    extras = data_dir / "siim-extra" / "images"
    return [*dicoms, min(extras.glob("*.png")), min(extras.glob("*.jpg"))]


# 96 does not divide 1024: the area resize then averages uneven windows, where OpenCV and torch differ.
@pytest.mark.parametrize("input_size", [96, 256])
def test_training_input_equals_the_apps_input_on_real_files(
    input_size: int, real_files: list[Path], tmp_path: Path
) -> None:
    predictor = Predictor(_checkpoint(tmp_path, input_size, mean=0.5, std=0.25), runtime="torch")
    spec = InputSpec.from_card(predictor.card)
    images = [data.LabelledImage(path.stem, path, "test", ("-1",)) for path in real_files]
    pixels, masks = data.load_examples(images, input_size, tmp_path / "cache", progress=False)
    training = data.RadiographDataset(pixels, masks, spec)  # no augmentation: the validation view
    for index, path in enumerate(real_files):
        app_input = predictor.preprocess(load_radiograph(path).pixels)[0]
        training_input = training[index][0]
        assert training_input.shape == app_input.shape == (1, input_size, input_size)
        # In pixel units (x * std + mean), the two differ by the cache's 8-bit rounding only.
        difference = (training_input - app_input).abs().max().item() * spec.std
        assert difference <= 1 / 255, f"{path.name}: {difference * 255:.2f}/255"


def test_training_predictions_are_the_apps_predictions_of_the_cached_image(
    real_files: list[Path], tmp_path: Path
) -> None:
    predictor = Predictor(_checkpoint(tmp_path, 64), runtime="torch")
    images = [data.LabelledImage(path.stem, path, "test", ("-1",)) for path in real_files[:3]]
    pixels, _ = data.load_examples(images, 64, tmp_path / "cache", progress=False)
    for tta in (False, True):
        maps, presence = predict_maps(predictor.network, pixels, predictor.input_spec, predictor.device, tta, 2)
        batch = torch.cat([predictor.preprocess(data.dequantise(image)) for image in pixels])
        app_maps, app_presence = predictor.run_network(batch, tta)
        np.testing.assert_allclose(maps, app_maps.numpy(), atol=1e-5)
        np.testing.assert_allclose(presence, app_presence.numpy(), atol=1e-5)


def test_cache_holds_the_apps_resize_of_pixels_and_mask(siim_labels_csv: Path, siim_dir: Path, tmp_path: Path) -> None:
    image = next(i for i in data.load_labelled_images(siim_labels_csv, siim_dir, "siim") if i.positive)
    cached_pixels, cached_mask = data.cached_example(image, 96, tmp_path)
    full = load_radiograph(image.path).pixels
    np.testing.assert_array_equal(cached_pixels, data.quantise(resize_pixels(full, 96)))
    full_mask = data.decode_mask(image, full.shape)
    np.testing.assert_array_equal(cached_mask, resize_pixels(full_mask.astype(np.float32), 96) >= 0.5)
    assert cached_mask.any()


def test_batches_follow_the_cards_size_normalisation_and_channels() -> None:
    card = ModelCard(network=NetworkConfig(input_size=8, in_channels=3),
                     normalisation={**default_normalisation(), "mean": 0.3, "std": 0.1})
    spec = InputSpec.from_card(card)
    assert spec == InputSpec(size=8, mean=0.3, std=0.1, channels=3)
    image = np.full((32, 24), 0.5, np.float32)
    batch = prepare_batch([image, np.zeros((4, 4), np.float32)], spec)
    assert batch.shape == (2, 3, 8, 8) and batch.dtype == torch.float32
    grey = round(0.5 * INPUT_LEVELS) / INPUT_LEVELS  # the nearest of the training cache's 8-bit levels
    torch.testing.assert_close(batch[0], torch.full((3, 8, 8), (grey - 0.3) / 0.1))
    torch.testing.assert_close(batch[1], torch.full((3, 8, 8), -0.3 / 0.1))
    with pytest.raises(ValueError, match="2-D"):
        prepare_batch([np.zeros((3, 8, 8), np.float32)], spec)


def test_inputs_are_snapped_to_the_training_caches_grey_levels() -> None:
    """The app's float pixels reach the network as the 8-bit levels every network trained on."""
    spec = InputSpec(size=16, mean=0.0, std=1.0)
    off_grid = np.random.default_rng(4).uniform(size=(48, 48)).astype(np.float32)
    batch = prepare_batch([off_grid], spec)
    cached = data.dequantise(data.quantise(resize_pixels(off_grid, 16)))  # what the training cache holds for it
    torch.testing.assert_close(batch[0, 0], torch.from_numpy(cached), rtol=0, atol=0)
    torch.testing.assert_close(prepare_batch([cached], spec), batch, rtol=0, atol=0)  # a no-op on the cache


def test_new_cards_carry_the_imagenet_grey_statistics() -> None:
    spec = InputSpec.from_card(ModelCard())
    assert (spec.mean, spec.std) == (pytest.approx(0.449), pytest.approx(0.226))


def test_flip_tta_averages_the_mirrored_run() -> None:
    def network(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Mask logits = the input; presence logit = the mean of the left half (not mirror-symmetric).
        return batch[:, :1], batch[:, 0, :, : batch.shape[-1] // 2].mean(dim=(1, 2))

    batch = torch.linspace(-2, 2, 16).reshape(1, 1, 1, 16).expand(2, 1, 4, 16).contiguous()
    plain_mask, plain_presence = run_network(network, batch, tta=False)
    mirrored_mask, mirrored_presence = run_network(network, batch.flip(-1), tta=False)
    mask, presence = run_network(network, batch, tta=True)
    torch.testing.assert_close(mask, (plain_mask + mirrored_mask.flip(-1)) / 2)
    torch.testing.assert_close(presence, (plain_presence + mirrored_presence) / 2)
    assert mask.shape == (2, 4, 16) and presence.shape == (2,)


def test_the_inference_path_never_imports_opencv_or_albumentations(random_checkpoint: Path, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from pneumoviewer.model.inference import Predictor\n"
        "from pneumoviewer.model.cam import grad_cam\n"
        "predictor = Predictor(sys.argv[1], runtime='torch')\n"
        "pixels = np.random.default_rng(0).random((80, 70), np.float32)\n"
        "grad_cam(predictor, pixels, target_mask=predictor.predict(pixels).mask)\n"
        "print(sorted(name for name in ('cv2', 'albumentations') if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(random_checkpoint)],
        capture_output=True, text=True, timeout=300, check=False,
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
