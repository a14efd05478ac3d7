"""Training: U-Net with presence head on labelled radiographs, validated on held-out DICOMs only.

Recipe (see `TrainingOptions`): ImageNet MobileNetV2 encoder with its folded BatchNorm kept in eval
mode, positives and negatives sampled equally, BCE + Dice on the mask (Dice over positive images
only: it is undefined on empty masks) plus BCE on the presence head, AdamW with warm-up and cosine
decay, one checkpoint per epoch (`last`, resumable) and the best epoch by tuned validation score
(`best`). Validation images come from the primary (DICOM) labels only, never from the extra set.
Examples and validation predictions go through `pneumoviewer.model.pipeline` with the card's input
settings, exactly as the app prepares an image and runs the network.
"""

from __future__ import annotations

import math
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pneumoviewer.model.checkpoint import (
    CheckpointError,
    ModelCard,
    load_checkpoint,
    save_checkpoint,
)
from pneumoviewer.model.network import (
    NetworkConfig,
    PneumothoraxNet,
    build_network,
    freeze_encoder_batchnorm,
    load_imagenet_encoder,
    select_device,
)
from pneumoviewer.model.pipeline import InputSpec, prepare_batch, run_network
from pneumoviewer.training import data
from pneumoviewer.training.tuning import ValidationSet, tune_settings

_STATE_FILE = "last-state.pt"


@dataclass
class TrainingOptions:
    labels: Path
    images: Path
    out: Path
    extra_labels: Path | None = None
    extra_images: Path | None = None
    encoder_weights: Path | None = None
    epochs: int = 8
    input_size: int = 256
    batch_size: int = 8
    learning_rate: float = 5e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    validation_fraction: float = 0.25
    seed: int = 2019
    steps_per_epoch: int | None = None  # default: one pass over the training images
    cache_dir: Path | None = None  # default: <out>/cache
    threads: int | None = None
    resume: bool = False
    ship: str = "last"  # which epoch becomes <out>/model: "last" or "best" (see `finalise`)
    progress: bool = True
    command: str = field(default_factory=lambda: shlex.join(["pneumoviewer", *sys.argv[1:]]))


def train(options: TrainingOptions) -> Path:
    """Train (or resume), then `finalise`; returns the shippable checkpoint `<out>/model`."""
    _seed_everything(options.seed)
    device = select_device(options.threads)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(options.cache_dir) if options.cache_dir else out / "cache"

    primary = data.load_labelled_images(options.labels, options.images, source="primary")
    train_images, validation_images = data.split_validation(primary, options.validation_fraction, options.seed)
    if options.extra_labels is not None:
        if options.extra_images is None:
            raise data.TrainingDataError(Path(options.extra_labels), "extra labels given without --extra-images")
        train_images += data.load_labelled_images(options.extra_labels, options.extra_images, source="extra")
    if not train_images or not validation_images:
        raise data.TrainingDataError(Path(options.labels), "too few labelled images for a training/validation split")

    train_pixels, train_masks = data.load_examples(train_images, options.input_size, cache_dir, options.progress)
    validation_pixels, validation_masks = data.load_examples(
        validation_images, options.input_size, cache_dir, options.progress
    )
    validation = ValidationSet(validation_pixels, validation_masks)

    config = NetworkConfig(input_size=options.input_size)
    model = build_network(config)
    if options.encoder_weights is not None:
        load_imagenet_encoder(model, options.encoder_weights)
    # channels_last: faster depthwise convolutions on CPU (oneDNN); no effect on the results.
    model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=options.weight_decay)
    steps_per_epoch = options.steps_per_epoch or max(1, len(train_images) // options.batch_size)
    total_steps = steps_per_epoch * options.epochs

    history: list[dict[str, Any]] = []
    commands = [options.command]
    start_epoch, best_score = 0, -math.inf
    if options.resume:
        start_epoch, best_score, history, earlier_commands = _restore(out, model, optimizer, device)
        commands = earlier_commands + commands

    card = ModelCard(
        network=config,
        training={
            "data": {
                "primary": {"labels": str(options.labels), "images": str(options.images), "count": len(primary)},
                "extra": None if options.extra_labels is None else
                {"labels": str(options.extra_labels), "images": str(options.extra_images)},
                "train_images": len(train_images),
                "train_positives": sum(image.positive for image in train_images),
            },
            "split": {
                "rule": f"seeded ({options.seed}) stratified {options.validation_fraction:.0%} of the primary labels",
                "validation_ids": [image.image_id for image in validation_images],
            },
            "recipe": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()
                       if k not in ("progress", "command", "resume")},
            "commands": commands,  # in order; a resumed run lists every invocation
            "seed": options.seed,
        },
    )

    spec = InputSpec.from_card(card)
    augmentation = data.training_augmentation(options.seed)
    dataset = data.RadiographDataset(train_pixels, train_masks, spec, augmentation)
    weights = data.balanced_sample_weights([image.positive for image in train_images])
    for epoch in range(start_epoch, options.epochs):
        started = time.monotonic()
        augmentation.set_random_seed(options.seed + epoch)
        sampler = torch.utils.data.WeightedRandomSampler(
            weights.tolist(), steps_per_epoch * options.batch_size, replacement=True,
            generator=torch.Generator().manual_seed(options.seed + epoch),
        )
        loader = torch.utils.data.DataLoader(dataset, batch_size=options.batch_size, sampler=sampler, drop_last=True)
        train_loss = _train_one_epoch(
            model, loader, optimizer, device, options, epoch * steps_per_epoch, total_steps,
            f"epoch {epoch + 1}/{options.epochs}",
        )
        probabilities, presence = predict_maps(model, validation.pixels, spec, device, tta=False,
                                               batch_size=options.batch_size)
        settings, figures = tune_settings(validation, probabilities, presence, quick=True)
        figures = {"epoch": epoch + 1, "train_loss": round(train_loss, 4),
                   "minutes": round((time.monotonic() - started) / 60, 2), **figures}
        history.append(figures)
        print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v}" for k, v in figures.items()), flush=True)

        card.training["epochs"] = epoch + 1
        card.training["history"] = history
        card.settings, card.metrics = settings.to_dict(), figures
        save_checkpoint(out / "last", model, card, half=False)
        if figures["challenge_score"] > best_score:
            best_score = figures["challenge_score"]
            save_checkpoint(out / "best", model, card, half=False)
        torch.save(
            {"epoch": epoch + 1, "best_score": best_score, "optimizer": optimizer.state_dict()}, out / _STATE_FILE
        )
    return finalise(out, validation, device, options.batch_size, ship=options.ship, commands=commands)


def finalise(
    out: Path, validation: ValidationSet, device: torch.device, batch_size: int = 16, ship: str = "last",
    commands: list[str] | None = None,
) -> Path:
    """Tune the shipped epoch's settings on the full grid and write the shippable `<out>/model` (fp16).

    `ship` is "last" (the end of the annealed schedule) or "best" (the epoch with the best quick-tuned
    validation score: with a few dozen validation positives that ranking is mostly noise). Settings are
    tuned with and without horizontal-flip TTA; TTA is kept when it raises the cross-fitted challenge
    score (tuned on one half of the split, scored on the other). `commands`, when given, replaces the
    card's record of the invocations that made the model. Returns `<out>/model`.
    """
    if ship not in ("last", "best"):
        raise ValueError(f"ship must be 'last' or 'best', not {ship!r}")
    model, card = load_checkpoint(out / ship, device=device)
    spec = InputSpec.from_card(card)
    candidates = {
        tta: tune_settings(validation, *predict_maps(model, validation.pixels, spec, device, tta, batch_size))
        for tta in (False, True)
    }
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


def learning_rate_at(step: int, total_steps: int, peak: float, warmup_steps: int) -> float:
    """Linear warm-up to `peak`, then cosine decay to 1 % of it at `total_steps`."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def _train_one_epoch(
    model: PneumothoraxNet,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    options: TrainingOptions,
    first_step: int,
    total_steps: int,
    description: str,
) -> float:
    model.train()
    freeze_encoder_batchnorm(model)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    losses = []
    bar = tqdm(loader, desc=description, disable=not options.progress, unit="batch", mininterval=10)
    for offset, (images, masks, presence) in enumerate(bar):
        for group in optimizer.param_groups:
            step = first_step + offset
            group["lr"] = learning_rate_at(step, total_steps, options.learning_rate, options.warmup_steps)
        images = images.to(device, memory_format=torch.channels_last)
        masks, presence = masks.to(device), presence.to(device)
        with torch.autocast(device.type, enabled=use_amp):
            mask_logits, presence_logits = model(images)
        loss = segmentation_loss(mask_logits.float(), presence_logits.float(), masks, presence)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return float(np.mean(losses))


def _restore(
    out: Path, model: PneumothoraxNet, optimizer: torch.optim.Optimizer, device: torch.device
) -> tuple[int, float, list[dict[str, Any]], list[str]]:
    """Restore weights and optimizer state; returns the epoch count, best score, history and commands."""
    state_path = out / _STATE_FILE
    if not state_path.is_file():
        raise CheckpointError(state_path, "nothing to resume: no finished epoch in this output folder")
    last_model, last_card = load_checkpoint(out / "last", device=device)
    if last_card.network != model.config:
        raise CheckpointError(out / "last.json", "the checkpoint's network differs from the requested one")
    model.load_state_dict(last_model.state_dict())
    try:
        state = torch.load(state_path, map_location=device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
    except Exception as err:  # noqa: BLE001 - torch.load and load_state_dict fail in many ways on a damaged file
        raise CheckpointError(state_path, f"training state is damaged ({type(err).__name__}: {err})") from None
    training = last_card.training
    commands = list(training.get("commands", [training["command"]] if "command" in training else []))
    return int(state["epoch"]), float(state["best_score"]), list(training.get("history", [])), commands


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
