"""Training on a handful of real SIIM images at 64 px: data, split, cache, loss, resume, the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pneumoviewer.cli import main
from pneumoviewer.errors import FileProblem
from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.model.checkpoint import CheckpointError, ModelCard, load_checkpoint
from pneumoviewer.model.network import NetworkConfig
from pneumoviewer.model.pipeline import InputSpec
from pneumoviewer.model.postprocess import InferenceSettings
from pneumoviewer.training import data
from pneumoviewer.training.train import (
    TrainingOptions,
    learning_rate_at,
    segmentation_loss,
    train,
)

IMAGENET_WEIGHTS = Path("/work/shared/weights/mobilenet_v2-imagenet.safetensors")
SPEC_64 = InputSpec.from_card(ModelCard(network=NetworkConfig(input_size=64)))


@pytest.fixture(scope="module")
def small_labels(siim_labels_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A labels file with the first 4 positive and 4 negative SIIM images, rows as the challenge wrote them."""
    rows = read_annotation_rows(siim_labels_csv)
    positives = list(dict.fromkeys(i for i, encoded in rows if encoded != "-1"))[:4]
    negatives = list(dict.fromkeys(i for i, encoded in rows if encoded == "-1"))[:4]
    chosen = set(positives + negatives)
    path = tmp_path_factory.mktemp("labels") / "train-rle.csv"
    path.write_text("ImageId, EncodedPixels\n" + "".join(f"{i}, {e}\n" for i, e in rows if i in chosen))
    return path


def _options(small_labels: Path, siim_dir: Path, out: Path, cache: Path, **overrides) -> TrainingOptions:
    values = dict(
        labels=small_labels, images=siim_dir, out=out, cache_dir=cache, input_size=64, batch_size=2,
        steps_per_epoch=2, epochs=1, warmup_steps=1, validation_fraction=0.25, threads=1, progress=False,
        encoder_weights=IMAGENET_WEIGHTS if IMAGENET_WEIGHTS.is_file() else None, command="pneumoviewer train (test)",
    )
    values.update(overrides)
    return TrainingOptions(**values)


def test_split_is_stratified_seeded_and_image_level(siim_labels_csv: Path, siim_dir: Path) -> None:
    images = data.load_labelled_images(siim_labels_csv, siim_dir, source="siim")
    assert len(images) == 1074 and sum(image.positive for image in images) == 222
    train_images, validation = data.split_validation(images, 0.25, seed=7)
    assert sum(image.positive for image in validation) == round(222 * 0.25)
    assert len(validation) == round(222 * 0.25) + round(852 * 0.25)
    assert not {i.image_id for i in train_images} & {i.image_id for i in validation}
    again = data.split_validation(images, 0.25, seed=7)[1]
    assert [i.image_id for i in again] == [i.image_id for i in validation]
    assert [i.image_id for i in data.split_validation(images, 0.25, seed=8)[1]] != [i.image_id for i in validation]


def test_labels_without_images_name_the_folder(small_labels: Path, tmp_path: Path) -> None:
    with pytest.raises(data.TrainingDataError, match="not in this folder") as caught:
        data.load_labelled_images(small_labels, tmp_path, source="siim")
    assert caught.value.path == tmp_path and isinstance(caught.value, FileProblem)


def test_cache_stores_resized_pixels_and_mask(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    image = next(i for i in data.load_labelled_images(small_labels, siim_dir, "siim") if i.positive)
    pixels, mask = data.cached_example(image, 64, tmp_path)
    assert pixels.dtype == np.uint8 and pixels.shape == (64, 64) and pixels.max() > 100
    assert mask.dtype == bool and mask.any()
    assert len(list(tmp_path.rglob("*.npy"))) == 1
    cached_pixels, cached_mask = data.cached_example(image, 64, tmp_path)
    assert np.array_equal(cached_pixels, pixels) and np.array_equal(cached_mask, mask)


def test_augmented_examples_keep_image_and_mask_aligned(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    images = data.load_labelled_images(small_labels, siim_dir, "siim")
    pixels, masks = data.load_examples(images, 64, tmp_path, progress=False)
    dataset = data.RadiographDataset(pixels, masks, SPEC_64, data.training_augmentation(seed=0))
    for index in range(len(dataset)):
        image, mask, presence = dataset[index]
        assert image.shape == (1, 64, 64) and mask.shape == (1, 64, 64)
        assert presence.item() == float(mask.any())


def test_loss_decreases_on_real_examples(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    from pneumoviewer.model.network import (
        NetworkConfig,
        build_network,
        freeze_encoder_batchnorm,
    )

    torch.manual_seed(0)
    images = data.load_labelled_images(small_labels, siim_dir, "siim")
    pixels, masks = data.load_examples(images, 64, tmp_path, progress=False)
    batch = [torch.stack(items) for items in zip(*(data.RadiographDataset(pixels, masks, SPEC_64)[i] for i in range(4, 8)))]
    model = build_network(NetworkConfig(input_size=64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        model.train()
        freeze_encoder_batchnorm(model)
        loss = segmentation_loss(*model(batch[0]), batch[1], batch[2])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_learning_rate_warms_up_then_decays() -> None:
    assert learning_rate_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert learning_rate_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert learning_rate_at(100, 100, 1.0, 10) == pytest.approx(0.01)


def test_train_writes_model_card_and_resumes(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    model_path = train(_options(small_labels, siim_dir, out, tmp_path / "cache"))
    model, card = load_checkpoint(model_path)
    assert model_path == out / "model"
    assert card.network.input_size == 64
    InferenceSettings.from_dict(card.settings)  # the tuned settings are valid inference settings
    assert card.metrics["images_evaluated"] == 2 and card.metrics["positive_images"] == 1
    assert card.metrics["all_empty_score"] == pytest.approx(0.5)
    assert len(card.training["split"]["validation_ids"]) == 2
    assert [entry["epoch"] for entry in card.training["history"]] == [1]

    resumed_path = train(_options(small_labels, siim_dir, out, tmp_path / "cache", epochs=2, resume=True,
                                  command="pneumoviewer train --resume (test)"))
    _, resumed = load_checkpoint(resumed_path)
    assert [entry["epoch"] for entry in resumed.training["history"]] == [1, 2]
    assert resumed.metrics["shipped"] == "last" and resumed.metrics["shipped_epoch"] == 2
    # flip TTA is kept exactly when it scored better on the cross-fitted halves
    with_tta, without_tta = (resumed.metrics[f"challenge_score_crossfit_{k}"] for k in ("with_tta", "without_tta"))
    assert resumed.settings["tta"] == (with_tta > without_tta)
    assert resumed.metrics["challenge_score_crossfit"] == max(with_tta, without_tta)
    assert resumed.training["commands"] == ["pneumoviewer train (test)", "pneumoviewer train --resume (test)"]
    assert resumed.training["split"] == card.training["split"]


def test_resume_without_a_finished_epoch_is_refused(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(_options(small_labels, siim_dir, tmp_path / "empty", tmp_path / "cache", resume=True))


def test_cli_reports_missing_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.csv"
    status = main(["train", "--labels", str(missing), "--images", str(tmp_path), "--out", str(tmp_path / "o")])
    assert status != 0
    error = capsys.readouterr().err
    assert error.startswith("pneumoviewer: ") and "absent.csv" in error
