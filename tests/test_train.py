"""Training on a handful of real SIIM images at 64 px: data, split, cache, loss, resume, the model card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import IMAGENET_WEIGHTS

from pneumoviewer.cli import main
from pneumoviewer.errors import FileProblem
from pneumoviewer.model.card import CheckpointError, ModelCard, NetworkConfig
from pneumoviewer.model.checkpoint import load_checkpoint
from pneumoviewer.model.network import build_network
from pneumoviewer.model.pipeline import InputSpec
from pneumoviewer.model.postprocess import InferenceSettings, presence_score
from pneumoviewer.training import data
from pneumoviewer.training import train as train_module
from pneumoviewer.training.pack import read_pack, write_pack
from pneumoviewer.training.state import STATE_FILE
from pneumoviewer.training.train import (
    TrainingOptions,
    learning_rate_at,
    parameter_groups,
    segmentation_loss,
    train,
)

SPEC_64 = InputSpec.from_card(ModelCard(network=NetworkConfig(input_size=64)))


def _options(small_labels: Path | None, siim_dir: Path | None, out: Path, cache: Path, **overrides) -> TrainingOptions:
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


@pytest.mark.parametrize("rendering", [False, True])
def test_augmented_examples_keep_image_and_mask_aligned(
    small_labels: Path, siim_dir: Path, tmp_path: Path, rendering: bool
) -> None:
    images = data.load_labelled_images(small_labels, siim_dir, "siim")
    pixels, masks = data.load_examples(images, 64, tmp_path, progress=False)
    dataset = data.RadiographDataset(pixels, masks, SPEC_64, data.training_augmentation(seed=0, rendering=rendering))
    for index in range(len(dataset)):
        image, mask, presence = dataset[index]
        assert image.shape == (1, 64, 64) and mask.shape == (1, 64, 64)
        assert presence.item() == float(mask.any())


def test_rendering_variation_changes_the_film_not_its_outline(small_labels: Path, siim_dir: Path,
                                                              tmp_path: Path) -> None:
    import albumentations as A

    image = next(i for i in data.load_labelled_images(small_labels, siim_dir, "siim") if i.positive)
    pixels, mask = data.cached_example(image, 128, tmp_path)
    changed = 0
    for seed in range(12):
        rendered = A.Compose(data.rendering_variation(), seed=seed)(image=pixels, mask=mask.astype(np.uint8))
        assert rendered["image"].dtype == np.uint8 and rendered["image"].shape == pixels.shape
        assert np.array_equal(rendered["mask"], mask)  # photometric only: the lesion stays where it is
        difference = np.abs(rendered["image"].astype(int) - pixels).mean()
        changed += difference > 0.5
        assert difference < 40  # a different look, not a different film
    assert 4 <= changed < 12  # most draws apply something, and some leave SIIM's own look


def test_loss_decreases_on_real_examples(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    from pneumoviewer.model.card import NetworkConfig
    from pneumoviewer.model.network import build_network, freeze_encoder_batchnorm

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


def test_the_encoder_can_learn_at_a_share_of_the_rate() -> None:
    model = build_network(NetworkConfig(input_size=64))
    (everything,) = parameter_groups(model, 1.0)
    assert everything["lr_scale"] == 1.0 and len(everything["params"]) == len(list(model.parameters()))
    encoder, rest = parameter_groups(model, 0.1)
    assert encoder["lr_scale"] == 0.1 and rest["lr_scale"] == 1.0
    assert {id(p) for p in encoder["params"]} == {id(p) for p in model.unet.encoder.parameters()}
    assert len(encoder["params"]) + len(rest["params"]) == len(list(model.parameters()))
    assert any(p is model.unet.classification_head[3].weight for p in rest["params"])  # the presence head learns fully


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


def test_resume_on_an_empty_folder_starts_fresh(
    small_labels: Path, siim_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "campaign.jsonl"
    options = _options(small_labels, siim_dir, tmp_path / "empty", tmp_path / "cache", resume=True, log_file=log)
    model_path = train(options)
    assert "nothing to resume" in capsys.readouterr().out and model_path.with_suffix(".json").is_file()
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [event["event"] for event in events] == ["started", "epoch", "finished"]
    assert events[1]["run"] == "empty" and "roc_auc" in events[1] and "challenge_score" in events[2]


@pytest.mark.parametrize("ema_decay", [0.0, 0.9], ids=["weights as trained", "weight average"])
def test_interrupted_mid_epoch_and_resumed_gives_the_same_weights(
    small_labels: Path, siim_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ema_decay: float
) -> None:
    """Killed inside epoch 2 (state saved every step), resumed: bit-identical to the uninterrupted run.

    Both runs draw the same batches, augmentations and dropout masks and do the same float operations
    on the same thread count, so equality is exact on the CPU (on CUDA, atomics make it approximate).
    With a weight average the state carries it too, and the average is what is validated and shipped.
    """
    settings = {"epochs": 2, "steps_per_epoch": 3, "checkpoint_minutes": 0.0, "validation_fraction": 0.25,
                "ema_decay": ema_decay}
    train(_options(small_labels, siim_dir, tmp_path / "whole", tmp_path / "cache", **settings))

    calls = {"count": 0}
    real_loss = train_module.segmentation_loss

    def loss_then_killed(*args: torch.Tensor) -> torch.Tensor:
        calls["count"] += 1
        if calls["count"] == 5:  # epoch 2, step 2: the state holds epoch 1 + 1 step
            raise KeyboardInterrupt
        return real_loss(*args)

    monkeypatch.setattr(train_module, "segmentation_loss", loss_then_killed)
    with pytest.raises(KeyboardInterrupt):
        train(_options(small_labels, siim_dir, tmp_path / "split", tmp_path / "cache", **settings))
    saved = torch.load(tmp_path / "split" / STATE_FILE, weights_only=True)
    assert (saved["epoch"], saved["step"]) == (1, 1)
    progress = json.loads((tmp_path / "split" / "progress.json").read_text())
    assert progress["checkpoint"]["epoch"] == 1 and progress["checkpoint"]["step"] == 1
    monkeypatch.setattr(train_module, "segmentation_loss", real_loss)
    train(_options(small_labels, siim_dir, tmp_path / "split", tmp_path / "cache", resume=True, **settings))

    whole, split = (load_checkpoint(tmp_path / name / "last")[0].state_dict() for name in ("whole", "split"))
    assert all(torch.equal(whole[name], split[name]) for name in whole)
    _, whole_card = load_checkpoint(tmp_path / "whole" / "model")
    _, split_card = load_checkpoint(tmp_path / "split" / "model")
    losses = [[e["train_loss"] for e in card.training["history"]] for card in (whole_card, split_card)]
    assert losses[0] == losses[1]
    assert len(split_card.training["commands"]) == 2
    trained = torch.load(tmp_path / "whole" / STATE_FILE, weights_only=True)
    raw = trained["model"]
    if ema_decay:  # shipped: the average kept in the state, not the last step's weights
        average = {name.removeprefix("module."): tensor for name, tensor in trained["averaged"].items()}
        assert all(torch.equal(whole[name], average[name]) for name in whole)
        assert not all(torch.equal(whole[name], raw[name]) for name in whole if whole[name].is_floating_point())
    else:
        assert trained["averaged"] is None and all(torch.equal(whole[name], raw[name]) for name in whole)


def test_resume_refuses_the_state_of_a_different_run(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(_options(small_labels, siim_dir, out, tmp_path / "cache"))
    with pytest.raises(CheckpointError, match="different run.*batch_size 2 -> 4"):
        train(_options(small_labels, siim_dir, out, tmp_path / "cache", batch_size=4, resume=True))
    (out / STATE_FILE).write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="damaged"):
        train(_options(small_labels, siim_dir, out, tmp_path / "cache", resume=True))


def test_folds_are_stratified_disjoint_seeded_and_cover_every_image(siim_labels_csv: Path, siim_dir: Path) -> None:
    images = data.load_labelled_images(siim_labels_csv, siim_dir, source="siim")
    validations = [data.split_folds(images, 5, fold, seed=2019)[1] for fold in range(5)]
    ids = [image.image_id for fold in validations for image in fold]
    assert sorted(ids) == sorted(image.image_id for image in images)  # each image validates exactly once
    assert {sum(image.positive for image in fold) for fold in validations} <= {44, 45}  # 222 positives
    assert {len(fold) for fold in validations} <= {214, 215, 216}
    train_images, validation = data.split_folds(images, 5, 2, seed=2019)
    assert not {i.image_id for i in train_images} & {i.image_id for i in validation}
    assert len(train_images) + len(validation) == len(images)
    shuffled = list(reversed(images))  # file order does not matter, the seed does
    assert {i.image_id for i in data.split_folds(shuffled, 5, 2, seed=2019)[1]} == {i.image_id for i in validation}
    assert {i.image_id for i in data.split_folds(images, 5, 2, seed=7)[1]} != {i.image_id for i in validation}
    with pytest.raises(ValueError):
        data.split_folds(images, 5, 5, seed=2019)


def test_fold_run_writes_out_of_fold_predictions_and_records_the_fold(
    small_labels: Path, siim_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fold1"
    _, card = load_checkpoint(train(_options(small_labels, siim_dir, out, tmp_path / "cache", folds=4, fold=1)))
    split = card.training["split"]
    assert (split["folds"], split["fold"]) == (4, 1) and "4-fold" in split["rule"]
    images = data.load_labelled_images(small_labels, siim_dir, "siim")
    expected = [i.image_id for i in data.split_folds(images, 4, 1, seed=2019)[1]]
    assert split["validation_ids"] == expected
    with np.load(out / "oof.npz") as oof:
        assert list(oof["image_ids"]) == expected and int(oof["fold"]) == 1 and int(oof["folds"]) == 4
        assert oof["maps"].shape == (2, 64, 64) and oof["maps"].dtype == np.float16
        assert oof["maps_tta"].shape == (2, 64, 64) and oof["masks"].shape == (2, 64, 64)
        assert list(oof["positive"]) == [bool(m.any()) for m in oof["masks"]] and oof["positive"].sum() == 1
        assert oof["top_probability"].shape == (2, len(oof["top_pixel_counts"]))
        assert np.all((oof["presence"] >= 0) & (oof["presence"] <= 1))
        # the stored inputs give the card's triage scores: top_probability column for 1000 px at 1024²
        column = list(oof["top_pixel_counts"]).index(1000)
        maps = oof["maps"].astype(np.float32)
        expected_top = [presence_score(m, None, InferenceSettings(presence_min_pixels=1000)) for m in maps]
        assert oof["top_probability"][:, column] == pytest.approx(expected_top, abs=1e-3)


def test_pack_round_trip_and_training_from_it(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    images = data.load_labelled_images(small_labels, siim_dir, "primary")
    pixels, masks = data.load_examples(images, 64, tmp_path / "cache", progress=False)
    lossless = read_pack(write_pack(tmp_path / "png.npz", images, 64, tmp_path / "cache", codec="png", progress=False))
    assert np.array_equal(lossless.pixels, pixels) and np.array_equal(lossless.masks, masks)
    def labels(items: list[data.LabelledImage]) -> list[tuple]:
        return [(i.image_id, i.rle_rows, i.positive) for i in items]

    assert labels(lossless.images) == labels(images)
    lossy = read_pack(write_pack(tmp_path / "jpeg.npz", images, 64, tmp_path / "cache", codec="jpeg90", progress=False))
    assert np.abs(lossy.pixels.astype(int) - pixels).mean() < 3 and np.array_equal(lossy.masks, masks)
    packed = _options(None, None, tmp_path / "packed", tmp_path / "unused", pack=tmp_path / "png.npz", folds=4, fold=0)
    _, card = load_checkpoint(train(packed))
    assert card.training["data"]["pack"] == str(tmp_path / "png.npz") and card.training["split"]["fold"] == 0
    with pytest.raises(data.TrainingDataError, match="at 64 px, not 96"):
        train(_options(None, None, tmp_path / "x", tmp_path / "unused", pack=tmp_path / "png.npz", input_size=96))


def test_cli_reports_missing_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.csv"
    status = main(["train", "--labels", str(missing), "--images", str(tmp_path), "--out", str(tmp_path / "o")])
    assert status != 0
    error = capsys.readouterr().err
    assert error.startswith("pneumoviewer: ") and "absent.csv" in error


def test_cli_refuses_a_weight_average_decay_out_of_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["train", "--labels", str(tmp_path / "absent.csv"), "--images", str(tmp_path),
                   "--out", str(tmp_path / "o"), "--ema-decay", "1.5"])
    assert status == 2  # before any file is read
    assert "--ema-decay" in capsys.readouterr().err
    with pytest.raises(ValueError, match="decay"):
        _options(None, None, tmp_path / "o", tmp_path / "cache", ema_decay=-0.1)


def test_train_into_a_log_writes_progress_lines_not_carriage_returns(
    small_labels: Path, siim_dir: Path, tmp_path: Path
) -> None:
    """The campaign sends `train`'s output to a file (train.log): whole lines there (tqdm redraws on a terminal)."""
    import os
    import subprocess
    import sys

    log = tmp_path / "train.log"
    command = [sys.executable, "-m", "pneumoviewer", "train", "--labels", str(small_labels), "--images", str(siim_dir),
               "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--input-size", "64",
               "--batch-size", "2", "--steps-per-epoch", "3", "--epochs", "1", "--threads", "1"]
    if IMAGENET_WEIGHTS.is_file():
        command += ["--encoder-weights", str(IMAGENET_WEIGHTS)]
    repo = str(Path(__file__).resolve().parent.parent)  # this checkout's package
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    with open(log, "w") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env=environment, timeout=600)
    written = log.read_text()
    assert done.returncode == 0, written
    assert "\r" not in written
    lines = written.splitlines()
    decoded = [line.split()[3] for line in lines if line.startswith("decoding images (64px): ")]
    assert decoded == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6", "1/2", "2/2"], written  # training, validation
    steps = [line for line in lines if line.startswith("epoch 1/1: ")]
    assert [line.split()[2] for line in steps] == ["1/3", "2/3", "3/3"], written  # a line per tenth at most
    assert steps[-1].startswith("epoch 1/1: 3/3 batches (100%)") and ", loss=" in steps[-1]
