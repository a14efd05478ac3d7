"""Training: U-Net with presence head on labelled radiographs, validated on held-out DICOMs only.

Recipe (see `TrainingOptions`): ImageNet MobileNetV2 encoder with its folded BatchNorm kept in eval
mode, positives and negatives sampled equally, BCE + Dice on the mask (Dice over positive images
only: it is undefined on empty masks) plus BCE on the presence head, AdamW with warm-up and cosine
decay, one checkpoint per epoch (`last`) and the best epoch by tuned validation score (`best`).
The resumable state (`training.state`) is saved every `checkpoint_minutes` and after every epoch,
and `--resume` continues mid-epoch on exactly the batches, augmentations and dropout it would have
drawn. Validation images come from the primary (DICOM) labels only, never from the extra set:
a seeded fraction, or one fold of a k-fold split (`data.split_folds`), whose held-out predictions
are written to `<out>/oof.npz` (`training.predictions`).
Examples and validation predictions go through `pneumoviewer.model.pipeline` with the card's input
settings, exactly as the app prepares an image and runs the network.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from pneumoviewer.io.atomic import atomic_write_text
from pneumoviewer.model.card import ModelCard, NetworkConfig, load_card
from pneumoviewer.model.checkpoint import load_checkpoint, save_checkpoint
from pneumoviewer.model.network import (
    PneumothoraxNet,
    build_network,
    freeze_encoder_batchnorm,
    load_imagenet_encoder,
    select_device,
)
from pneumoviewer.model.pipeline import InputSpec, prepare_batch, run_network
from pneumoviewer.progress import progress_bar
from pneumoviewer.training import data
from pneumoviewer.training.pack import read_pack
from pneumoviewer.training.predictions import write_predictions
from pneumoviewer.training.state import (
    STATE_FILE,
    AugmentationRandom,
    TrainingState,
    load_state,
    restore_random,
    restore_training,
    save_state,
)
from pneumoviewer.training.tuning import ValidationSet, tune_settings

PROGRESS_FILE = "progress.json"
# In a log (the campaign's train.log) a progress line a minute at most: a step takes seconds, an epoch many minutes.
TRAINING_LOG_SECONDS = 60.0
# The shipped model's figures in the campaign log's "finished" line.
_FINISHED_FIGURES = ("challenge_score", "challenge_score_crossfit", "all_empty_score", "roc_auc",
                     "roc_auc_presence_head", "shipped_epoch")

@dataclass
class TrainingOptions:
    labels: Path | None  # primary labels and images; both None when `pack` is given
    images: Path | None
    out: Path
    extra_labels: Path | None = None
    extra_images: Path | None = None
    pack: Path | None = None  # an image pack (`training.pack`) instead of labels, images and cache
    encoder_weights: Path | None = None
    epochs: int = 8
    input_size: int = 256
    batch_size: int = 8
    learning_rate: float = 5e-4
    # The pretrained encoder's learning rate as a share of `learning_rate`. At 384² and the full rate
    # the encoder's deepest features died within an epoch (docs/model.md, "Campaign log"); 0.1 kept them.
    encoder_lr_scale: float = 1.0
    # Another site's processing (edge enhancement, tone curve, noise) on some examples: `data.rendering_variation`.
    rendering_augmentation: bool = False
    # Validate and ship an exponential moving average of the weights (decay per step, e.g. 0.998: a horizon of
    # ~500 steps) instead of the last step's; 0: the weights as trained. Epoch-to-epoch swings of a fold's
    # held-out figures (AUC 0.909-0.952 over fold 4's last 10 epochs) are what an average evens out.
    ema_decay: float = 0.0
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    validation_fraction: float = 0.25
    folds: int | None = None  # k-fold cross-validation: fold `fold` of `folds` validates (see `data.split_folds`)
    fold: int = 0
    seed: int = 2019
    steps_per_epoch: int | None = None  # default: one pass over the training images
    cache_dir: Path | None = None  # default: <out>/cache
    threads: int | None = None
    resume: bool = False  # continue from <out>/last-state.pt, mid-epoch; a fresh start when there is none
    checkpoint_minutes: float = 5.0  # the training state is saved at least this often (and after every epoch)
    log_file: Path | None = None  # append one JSON line per start, epoch and finish (the campaign log)
    ship: str = "last"  # which epoch becomes <out>/model: "last" or "best" (see `finalise`)
    progress: bool = True
    command: str = field(default_factory=lambda: shlex.join(["pneumoviewer", *sys.argv[1:]]))

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"the weight average's decay (--ema-decay) must be 0 (off) or between 0 and 1, "
                             f"e.g. 0.998; got {self.ema_decay!r}")


def train(options: TrainingOptions) -> Path:
    """Train (or resume, mid-epoch), then `finalise`; returns the shippable checkpoint `<out>/model`."""
    _seed_everything(options.seed)
    device = select_device(options.threads)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    primary, extra, examples = _labelled_data(options, out)
    train_images, validation_images, split = _split(primary, options)
    train_images += extra
    if not train_images or not validation_images:
        raise data.TrainingDataError(
            _primary_source(options), "too few labelled images for a training/validation split"
        )

    train_pixels, train_masks = examples(train_images)
    validation = ValidationSet(*examples(validation_images))

    config = NetworkConfig(input_size=options.input_size)
    model = build_network(config)
    if options.encoder_weights is not None:
        load_imagenet_encoder(model, options.encoder_weights)
    # channels_last: faster depthwise convolutions on CPU (oneDNN); no effect on the results.
    model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(parameter_groups(model, options.encoder_lr_scale), lr=options.learning_rate,
                                  weight_decay=options.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    steps_per_epoch = options.steps_per_epoch or max(1, len(train_images) // options.batch_size)
    total_steps = steps_per_epoch * options.epochs

    run = {"seed": options.seed, "batch_size": options.batch_size, "steps_per_epoch": steps_per_epoch,
           "input_size": options.input_size, "split": split["rule"], "train_images": len(train_images)}
    if options.encoder_lr_scale != 1.0:  # absent at 1.0, so states saved before the option still resume
        run["encoder_lr_scale"] = options.encoder_lr_scale
    if options.ema_decay:  # likewise absent when off
        run["ema_decay"] = options.ema_decay
    averaged = weight_average(model, options.ema_decay)
    # What is validated and shipped: the average (a copy of the network with averaged weights) or the network.
    network = model if averaged is None else cast(PneumothoraxNet, averaged.module)
    state = TrainingState(run=run, commands=[options.command])
    loaded = load_state(out, run, device) if options.resume else None
    payload: dict[str, Any] | None = None
    if loaded is not None:
        state, payload = loaded
        restore_training(payload, model, optimizer, scaler, averaged)
        state.commands.append(options.command)
        _report(options, out, "resumed", epoch=state.epoch, step=state.step,
                message=f"resuming {out} after epoch {state.epoch}, step {state.step} of the next")
    else:
        _report(options, out, "started", epochs=options.epochs, steps_per_epoch=steps_per_epoch,
                message=("nothing to resume in " if options.resume else "training in ") + f"{out}: starting fresh")

    card = ModelCard(
        network=config,
        training={
            "data": _data_record(options, primary, extra, train_images),
            "split": {**split, "validation_ids": [image.image_id for image in validation_images]},
            "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()
                       if k not in ("progress", "command", "resume", "log_file", "checkpoint_minutes")},
            "seed": options.seed,
        },
    )

    spec = InputSpec.from_card(card)
    augmentation = data.training_augmentation(options.seed, rendering=options.rendering_augmentation)
    dataset = data.RadiographDataset(train_pixels, train_masks, spec, augmentation)
    weights = data.balanced_sample_weights([image.positive for image in train_images])
    progress = _Progress(out, options, steps_per_epoch)
    if loaded is not None:  # status shows the checkpoint this run resumed from until the next one
        progress.checkpointed_at = {"epoch": state.epoch, "step": state.step,
                                    "time": round((out / STATE_FILE).stat().st_mtime, 1)}

    def checkpoint(phase: str, augmentation_random: AugmentationRandom) -> None:
        progress.account(state)
        save_state(out, state, model, optimizer, scaler, augmentation_random, averaged)
        progress.write(state, options.epochs, phase, checkpointed=True)

    for epoch in range(state.epoch, options.epochs):
        augmentation_random = data.seed_augmentation(augmentation, options.seed + epoch)
        if payload is not None:  # the first epoch after a resume continues every random stream
            restore_random(payload, augmentation_random if state.step > 0 else None)
            payload = None
        order = list(torch.utils.data.WeightedRandomSampler(
            weights.tolist(), steps_per_epoch * options.batch_size, replacement=True,
            generator=torch.Generator().manual_seed(options.seed + epoch),
        ))
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=options.batch_size, sampler=order[state.step * options.batch_size:], drop_last=True,
            generator=torch.Generator().manual_seed(options.seed + epoch),  # keeps the global stream for dropout
        )

        _train_steps(model, averaged, loader, optimizer, scaler, device, options, state, steps_per_epoch,
                     total_steps, progress, functools.partial(checkpoint, "training", augmentation_random),
                     f"epoch {epoch + 1}/{options.epochs}")
        checkpoint("validating", augmentation_random)  # a kill during validation costs the validation only

        probabilities, presence = predict_maps(network, validation.pixels, spec, device, tta=False,
                                               batch_size=options.batch_size)
        settings, figures = tune_settings(validation, probabilities, presence, quick=True)
        progress.account(state)
        figures = {"epoch": epoch + 1, "train_loss": round(float(np.mean(state.epoch_losses)), 4),
                   "minutes": round(state.epoch_seconds / 60, 2), **figures}
        state.history.append(figures)
        card.training.update(epochs=epoch + 1, history=state.history, commands=state.commands)
        card.settings, card.metrics = settings.to_dict(), figures
        save_checkpoint(out / "last", network, card, half=False)
        if figures["challenge_score"] > state.best_score:
            state.best_score = figures["challenge_score"]
            save_checkpoint(out / "best", network, card, half=False)
        state.epoch, state.step, state.epoch_losses, state.epoch_seconds = epoch + 1, 0, [], 0.0
        checkpoint("training" if epoch + 1 < options.epochs else "finalising", augmentation_random)
        summary = ", ".join(f"{k} {v}" for k, v in figures.items())
        _report(options, out, "epoch", message=f"epoch {epoch + 1}: {summary}",
                **figures)

    model_path = finalise(out, validation, device, options.batch_size, ship=options.ship, commands=state.commands,
                          validation_ids=[image.image_id for image in validation_images],
                          fold=split["fold"], folds=split["folds"])
    shipped = load_card(model_path).metrics
    progress.write(state, options.epochs, "finished")
    _report(options, out, "finished", message=f"finished {out}: model {model_path}",
            **{key: shipped.get(key) for key in _FINISHED_FIGURES})
    return model_path


def finalise(
    out: Path, validation: ValidationSet, device: torch.device, batch_size: int = 16, ship: str = "last",
    commands: list[str] | None = None, validation_ids: Sequence[str] | None = None,
    fold: int | None = None, folds: int | None = None,
) -> Path:
    """Tune the shipped epoch's settings on the full grid and write the shippable `<out>/model` (fp16).

    `ship` is "last" (the end of the annealed schedule) or "best" (the epoch with the best quick-tuned
    validation score: with a few dozen validation positives that ranking is mostly noise). Settings are
    tuned with and without horizontal-flip TTA; TTA is kept when it raises the cross-fitted challenge
    score (tuned on one half of the split, scored on the other). `commands`, when given, replaces the
    card's record of the invocations that made the model. With `validation_ids` (the ids of
    `validation`, in order) the shipped epoch's held-out predictions, with and without TTA, are
    written to `<out>/oof.npz` (`training.predictions`). Returns `<out>/model`.
    """
    if ship not in ("last", "best"):
        raise ValueError(f"ship must be 'last' or 'best', not {ship!r}")
    model, card = load_checkpoint(out / ship, device=device)
    predictions = _held_out_predictions(model, card, validation, device, batch_size)
    if validation_ids is not None:
        write_predictions(out, validation_ids, validation.masks, predictions[False], predictions[True],
                          fold=fold, folds=folds, epoch=card.training.get("epochs"))
    candidates = {tta: tune_settings(validation, *predictions[tta]) for tta in (False, True)}
    tta = candidates[True][1]["challenge_score_crossfit"] > candidates[False][1]["challenge_score_crossfit"]
    settings, figures = candidates[tta]
    size = card.network.input_size
    card.settings = {**settings.to_dict(), "tta": tta}
    card.metrics = {
        **figures,
        "challenge_score_crossfit_without_tta": candidates[False][1]["challenge_score_crossfit"],
        "challenge_score_crossfit_with_tta": candidates[True][1]["challenge_score_crossfit"],
        "shipped_epoch": card.training.get("epochs"),
        "shipped": ship,
        "evaluated_at": f"{size}x{size} network resolution, validation masks area-downsampled; "
        "thresholds tuned on this split (see challenge_score_crossfit for a held-out estimate)",
    }
    if commands is not None:
        card.training["commands"] = commands
    card.training["minutes"] = round(sum(entry["minutes"] for entry in card.training.get("history", [])), 1)
    save_checkpoint(out / "model", model, card, half=True)
    return out / "model"


def rebuild_held_out(options: TrainingOptions) -> Path:
    """`<out>/oof.npz` again, from a finished run's shipped network `<out>/model` on the run's own split.

    For a run carried to another machine without its predictions (`training.campaign.park` keeps the
    network and its card, not the tens of MB of maps). The maps come from the shipped half-precision
    weights, not the full-precision last epoch `finalise` predicted with, so they agree with the lost
    file to within that rounding. A card whose held-out ids are not this split's is refused.
    """
    device = select_device(options.threads)
    out = Path(options.out)
    primary, _extra, examples = _labelled_data(options, out)
    _train_images, validation_images, split = _split(primary, options)
    model, card = load_checkpoint(out / "model", device=device)
    validation_ids = [image.image_id for image in validation_images]
    if card.training.get("split", {}).get("validation_ids") != validation_ids:
        raise data.TrainingDataError(out / "model.json", "this network held out other images than the split "
                                     f"these arguments make ({split['rule']})")
    validation = ValidationSet(*examples(validation_images))
    predictions = _held_out_predictions(model, card, validation, device, options.batch_size)
    return write_predictions(out, validation_ids, validation.masks, predictions[False], predictions[True],
                             fold=split["fold"], folds=split["folds"], epoch=card.training.get("epochs"))


def _held_out_predictions(
    model: PneumothoraxNet, card: ModelCard, validation: ValidationSet, device: torch.device, batch_size: int
) -> dict[bool, tuple[np.ndarray, np.ndarray]]:
    """{tta: (maps, presence)} on the held-out images, without and with flip TTA."""
    spec = InputSpec.from_card(card)
    return {tta: predict_maps(model, validation.pixels, spec, device, tta, batch_size) for tta in (False, True)}


def predict_maps(
    model: PneumothoraxNet, pixels: np.ndarray, spec: InputSpec, device: torch.device, tta: bool,
    batch_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Probability maps (float32 [N,S,S]) and presence probabilities ([N]) for uint8 cached pixels.

    Through `prepare_batch` and `run_network`, as `Predictor` runs the network (with flip TTA if `tta`).
    """
    model.eval()
    maps, presence = [], []
    for start in range(0, len(pixels), batch_size):
        batch = prepare_batch(data.dequantise(pixels[start:start + batch_size]), spec)
        mask_probability, presence_probability = run_network(model, batch, tta, device=device)
        maps.append(mask_probability.numpy())
        presence.append(presence_probability.numpy())
    return np.concatenate(maps), np.concatenate(presence)


def segmentation_loss(
    mask_logits: torch.Tensor, presence_logits: torch.Tensor, masks: torch.Tensor, presence: torch.Tensor
) -> torch.Tensor:
    """Pixel BCE + soft Dice over positive images + presence BCE."""
    pixel_bce = F.binary_cross_entropy_with_logits(mask_logits, masks)
    presence_bce = F.binary_cross_entropy_with_logits(presence_logits, presence)
    positive = presence > 0
    if not positive.any():
        return pixel_bce + presence_bce
    probabilities = torch.sigmoid(mask_logits[positive]).flatten(1)
    targets = masks[positive].flatten(1)
    dice = (2 * (probabilities * targets).sum(1) + 1) / (probabilities.sum(1) + targets.sum(1) + 1)
    return pixel_bce + (1 - dice).mean() + presence_bce


def parameter_groups(model: PneumothoraxNet, encoder_lr_scale: float) -> list[dict[str, Any]]:
    """The optimizer's groups: one for everything at scale 1, or the encoder apart at `encoder_lr_scale`."""
    if encoder_lr_scale == 1.0:
        return [{"params": list(model.parameters()), "lr_scale": 1.0}]
    encoder = list(model.unet.encoder.parameters())
    in_encoder = {id(parameter) for parameter in encoder}
    rest = [parameter for parameter in model.parameters() if id(parameter) not in in_encoder]
    return [{"params": encoder, "lr_scale": encoder_lr_scale}, {"params": rest, "lr_scale": 1.0}]


def learning_rate_at(step: int, total_steps: int, peak: float, warmup_steps: int) -> float:
    """Linear warm-up to `peak`, then cosine decay to 1 % of it at `total_steps`."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def weight_average(model: PneumothoraxNet, decay: float) -> AveragedModel | None:
    """An exponential moving average of `model`'s weights and BatchNorm buffers, updated after each optimizer
    step (`_train_steps`); None when `decay` is 0 (`TrainingOptions` checks its range). Its first update copies
    the weights."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _train_steps(
    model: PneumothoraxNet,
    averaged: AveragedModel | None,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    options: TrainingOptions,
    state: TrainingState,
    steps_per_epoch: int,
    total_steps: int,
    progress: _Progress,
    checkpoint: Callable[[], None],
    description: str,
) -> None:
    """The rest of the current epoch's steps (from `state.step`), saving the state when `progress` says it is due."""
    model.train()
    freeze_encoder_batchnorm(model)
    use_amp = device.type == "cuda"
    bar = progress_bar(steps_per_epoch, description, unit="batch", initial=state.step,
                       log_interval_seconds=TRAINING_LOG_SECONDS, enabled=options.progress)
    for images, masks, presence in loader:
        step_started = time.monotonic()
        rate = learning_rate_at(
            state.epoch * steps_per_epoch + state.step, total_steps, options.learning_rate, options.warmup_steps
        )
        for group in optimizer.param_groups:
            group["lr"] = group.get("lr_scale", 1.0) * rate
        images = images.to(device, memory_format=torch.channels_last)
        masks, presence = masks.to(device), presence.to(device)
        with torch.autocast(device.type, enabled=use_amp):
            mask_logits, presence_logits = model(images)
        loss = segmentation_loss(mask_logits.float(), presence_logits.float(), masks, presence)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if averaged is not None:
            averaged.update_parameters(model)
        state.epoch_losses.append(loss.item())
        state.step += 1
        progress.stepped(time.monotonic() - step_started)
        bar.set_postfix(loss=f"{np.mean(state.epoch_losses[-20:]):.3f}")
        bar.update()
        if progress.checkpoint_due():
            checkpoint()
        elif progress.report_due():
            progress.write(state, options.epochs, "training")
    bar.close()


class _Progress:
    """Times the run, decides when a checkpoint is due, and writes `<out>/progress.json` for `campaign status`."""

    _REPORT_SECONDS = 30.0

    def __init__(self, out: Path, options: TrainingOptions, steps_per_epoch: int) -> None:
        self.file = out / PROGRESS_FILE
        self.options = options
        self.steps_per_epoch = steps_per_epoch
        self.segment_started = self.last_checkpoint = self.last_report = time.monotonic()
        self.steps = 0
        self.step_seconds = 0.0
        self.checkpointed_at: dict[str, Any] | None = None

    def stepped(self, seconds: float) -> None:
        self.steps += 1
        self.step_seconds += seconds

    def checkpoint_due(self) -> bool:
        return time.monotonic() - self.last_checkpoint >= self.options.checkpoint_minutes * 60

    def report_due(self) -> bool:
        return time.monotonic() - self.last_report >= self._REPORT_SECONDS

    def account(self, state: TrainingState) -> None:
        """Add the time since the last call to the epoch's seconds (kept in the state across interruptions)."""
        now = time.monotonic()
        state.epoch_seconds += now - self.segment_started
        self.segment_started = now

    def write(self, state: TrainingState, epochs: int, phase: str, checkpointed: bool = False) -> None:
        now = time.monotonic()
        self.last_report = now
        if checkpointed:
            self.last_checkpoint = now
            self.checkpointed_at = {"epoch": state.epoch, "step": state.step, "time": round(time.time(), 1)}
        values = {
            "run": self.file.parent.name, "out": str(self.file.parent), "pid": os.getpid(), "phase": phase,
            "epoch": state.epoch, "step": state.step, "epochs": epochs, "steps_per_epoch": self.steps_per_epoch,
            "seconds_per_step": round(self.step_seconds / self.steps, 3) if self.steps else None,
            "recent_loss": round(float(np.mean(state.epoch_losses[-20:])), 4) if state.epoch_losses else None,
            "last_epoch": state.history[-1] if state.history else None,
            "checkpoint": self.checkpointed_at, "updated": round(time.time(), 1),
        }
        atomic_write_text(self.file, json.dumps(values) + "\n")


def _report(options: TrainingOptions, out: Path, event: str, message: str, **values: Any) -> None:
    """Print `message`, and append the event as one JSON line to the campaign log when there is one."""
    print(message, flush=True)
    if options.log_file is not None:
        line = {"time": datetime.now().isoformat(timespec="seconds"), "event": event, "run": out.name,
                "out": str(out), **values}
        Path(options.log_file).parent.mkdir(parents=True, exist_ok=True)
        with open(options.log_file, "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")


def _labelled_data(
    options: TrainingOptions, out: Path
) -> tuple[
    list[data.LabelledImage], list[data.LabelledImage],
    Callable[[Sequence[data.LabelledImage]], tuple[np.ndarray, np.ndarray]],
]:
    """(primary images, extra images, their examples' loader), from the data folders or from a pack."""
    if options.pack is not None:
        images = read_pack(options.pack)
        if images.size != options.input_size:
            raise data.TrainingDataError(
                Path(options.pack), f"this pack is at {images.size} px, not {options.input_size}"
            )
        return images.by_source("primary"), images.by_source("extra"), images.examples
    if options.labels is None or options.images is None:
        raise ValueError("give the primary labels and images, or a pack")
    primary = data.load_labelled_images(options.labels, options.images, source="primary")
    extra: list[data.LabelledImage] = []
    if options.extra_labels is not None:
        if options.extra_images is None:
            raise data.TrainingDataError(Path(options.extra_labels), "extra labels given without --extra-images")
        extra = data.load_labelled_images(options.extra_labels, options.extra_images, source="extra")
    cache_dir = Path(options.cache_dir) if options.cache_dir else out / "cache"

    def examples(images: Sequence[data.LabelledImage]) -> tuple[np.ndarray, np.ndarray]:
        return data.load_examples(images, options.input_size, cache_dir, options.progress)

    return primary, extra, examples


def _split(
    primary: list[data.LabelledImage], options: TrainingOptions
) -> tuple[list[data.LabelledImage], list[data.LabelledImage], dict[str, Any]]:
    """(train, validation, the split's card record) of the primary images: k-fold or a fraction."""
    if options.folds:
        train_images, validation_images = data.split_folds(primary, options.folds, options.fold, options.seed)
        rule = (f"seeded ({options.seed}) stratified {options.folds}-fold split of the primary labels by image "
                f"(data.split_folds), fold {options.fold} validates")
        return train_images, validation_images, {"rule": rule, "folds": options.folds, "fold": options.fold}
    train_images, validation_images = data.split_validation(primary, options.validation_fraction, options.seed)
    rule = f"seeded ({options.seed}) stratified {options.validation_fraction:.0%} of the primary labels"
    return train_images, validation_images, {"rule": rule, "folds": None, "fold": None}


def _data_record(
    options: TrainingOptions, primary: list[data.LabelledImage], extra: list[data.LabelledImage],
    train_images: list[data.LabelledImage],
) -> dict[str, Any]:
    if options.pack is not None:
        sources: dict[str, Any] = {"pack": str(options.pack), "primary_count": len(primary), "extra_count": len(extra)}
    else:
        sources = {
            "primary": {"labels": str(options.labels), "images": str(options.images), "count": len(primary)},
            "extra": None if options.extra_labels is None else
            {"labels": str(options.extra_labels), "images": str(options.extra_images), "count": len(extra)},
        }
    return {**sources, "train_images": len(train_images),
            "train_positives": sum(image.positive for image in train_images)}


def _primary_source(options: TrainingOptions) -> Path:
    return Path(options.pack if options.pack is not None else options.labels or ".")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
