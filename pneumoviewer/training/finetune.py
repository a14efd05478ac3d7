"""Fine-tuning the current model on a site's reviewed cases, within a time budget, then the gate.

The recipe (measured in docs/model.md, "Learning from corrections"):
1. A stratified slice of the reviewed cases, by image, is held out (`data.split_validation`): never
   trained on, never used for statistics or thresholds; the gate scores both models on it.
2. Start from the current model. Optionally (`adapt_batchnorm`, off by default) re-estimate the
   decoder's BatchNorm statistics on the site's training images first (label-free; the encoder's
   folded statistics stay): issue #14 measured it as a gain on its rendering, but on the site twin
   it lowered the challenge score and the candidate built on it lost at the gate (docs/model.md).
3. Train within the time budget: the decoder and both heads at `learning_rate`, the encoder at
   `encoder_lr_scale` of it, every BatchNorm frozen at its statistics; each batch is half
   site cases (positives and negatives equally), half rehearsal images of the developers' SIIM
   training data (when found beside the checkout) against forgetting; the training augmentation.
   The rate warms up and decays with the elapsed share of the budget (a cosine), so the schedule
   fits whatever the machine's speed. The state is saved every `checkpoint_minutes`; the same run
   (same cases, parent and recipe) resumes from it.
4. The calibration and both operating points (`model.calibration`, `model.operating_points`: triage
   at sensitivity 0.90) fitted on the site's training cases; the post-processing settings stay the
   parent's (re-tuning them there, `retune_settings`, over-fitted: measured in docs/model.md).
   Options measured on the site twin and left off because the candidate still lost at the gate
   (docs/model.md): `fit_fraction` holds a share of the training cases apart from training and
   fits the calibration, the operating points and the challenge threshold there; `site_sampling`
   "prevalence" draws the site's cases at their own share of positives instead of balanced.
Everything goes through the app's pre-processing (`data.cached_example` -> `pipeline.resize_pixels`,
`pipeline.prepare_batch`, `train.predict_maps`), as training does.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pneumoviewer import metrics
from pneumoviewer.errors import CancelCheck, FileProblem, ProgressCallback, raise_if_cancelled
from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.io.rle import EMPTY, RleConvention, RleError, decode_rows, encode
from pneumoviewer.model.calibration import fit_calibration
from pneumoviewer.model.card import ModelCard
from pneumoviewer.model.checkpoint import load_checkpoint, save_checkpoint
from pneumoviewer.model.identity import model_fingerprint
from pneumoviewer.model.network import PneumothoraxNet, select_device
from pneumoviewer.model.operating_points import DEFAULT_TRIAGE_SENSITIVITY, OperatingPoint, OperatingPoints
from pneumoviewer.model.pipeline import InputSpec
from pneumoviewer.model.postprocess import InferenceSettings, presence_score, triage_score
from pneumoviewer.paths import default_model_path, resources_dir
from pneumoviewer.review.training_set import (
    LABELLED,
    RefusedCase,
    ReviewedCase,
    ReviewedCases,
    merge_refusals,
)
from pneumoviewer.training import data, gate
from pneumoviewer.training.finetune_recipe import SITE_SAMPLING
from pneumoviewer.training.train import parameter_groups, predict_maps, segmentation_loss
from pneumoviewer.training.tuning import ValidationSet, fit_presence_threshold, tune_settings

STATE_FILE = "finetune-state.pt"
PhaseCallback = Callable[[str], None]


@dataclass
class FinetuneOptions:
    out: Path
    start_model: Path = field(default_factory=default_model_path)
    minutes: float = 5.0
    holdout_fraction: float = 0.25
    seed: int = 2019
    batch_size: int = 8
    learning_rate: float = 3e-4
    encoder_lr_scale: float = 0.0  # 0: the encoder is not trained
    rehearsal_images: int = 240  # developers' SIIM training images mixed in (0: none)
    # Re-estimate the decoder's BatchNorm statistics on the site first. Off: on the site twin it cost 0.03 of
    # held-out challenge score alone and made the candidate worse; without it the candidate won (docs/model.md).
    adapt_batchnorm: bool = False
    # Re-tune the post-processing settings on the site's training cases too. Off: measured on the site twin,
    # settings tuned on 148 trained-on cases cost 0.04 of held-out AUC (docs/model.md, "Learning from corrections").
    retune_settings: bool = False
    # Share of the training cases held apart from training: the candidate's calibration, operating points and
    # challenge threshold are fitted on them (0: on the training cases themselves, which the candidate has seen).
    fit_fraction: float = 0.0
    site_sampling: str = "balanced"  # the site half of each batch: one of SITE_SAMPLING (finetune_recipe.py)
    forgetting: bool = True  # also score both models on the developers' SIIM validation split
    cache_dir: Path | None = None  # default: <out>/cache
    threads: int | None = None
    checkpoint_minutes: float = 2.0

    def __post_init__(self) -> None:
        if self.site_sampling not in SITE_SAMPLING:
            raise ValueError(f"site_sampling must be one of {', '.join(SITE_SAMPLING)}, got {self.site_sampling!r}")
        if not 0 <= self.fit_fraction < 1:
            raise ValueError(f"fit_fraction must be at least 0 and below 1, got {self.fit_fraction!r}")

    def recipe(self) -> dict[str, Any]:
        """What decides the result (the card records it; a changed recipe never resumes an old state)."""
        keys = ("minutes", "holdout_fraction", "seed", "batch_size", "learning_rate", "encoder_lr_scale",
                "rehearsal_images", "adapt_batchnorm", "retune_settings", "fit_fraction", "site_sampling")
        return {key: getattr(self, key) for key in keys}


@dataclass(frozen=True)
class FinetuneResult:
    model: Path  # <out>/model (.safetensors + .json card)
    report: gate.GateReport
    cases: ReviewedCases  # what was used and what was refused, with reasons
    trained_on: tuple[str, ...]
    held_out: tuple[str, ...]
    minutes: float


def cases_from_csv(labels: Path, images: Path) -> ReviewedCases:
    """Reviewed cases from a challenge-format CSV and a folder of `<ImageId>.dcm|png|jpg` files.

    A case without an image file, with an unreadable image, or whose rows do not decode to a mask
    of its image's size is refused with the reason; the rows of an image are united.
    """
    rows: dict[str, list[str]] = {}
    for image_id, encoded in read_annotation_rows(labels):
        rows.setdefault(image_id, []).append(encoded)
    files = data.find_image_files(images)
    usable: list[ReviewedCase] = []
    refused: list[RefusedCase] = []
    for image_id, encoded_rows in rows.items():
        path = files.get(image_id)
        if path is None:
            refused.append(RefusedCase(image_id, f"no image file for it in {images}"))
            continue
        try:
            shape = _image_shape(path)
            mask = decode_rows(encoded_rows, shape)
        except FileProblem as error:
            refused.append(RefusedCase(image_id, error.reason))
            continue
        except RleError as error:
            refused.append(RefusedCase(image_id, f"its mask does not fit its {shape[1]}×{shape[0]} image "
                                                 f"({error.reason})"))
            continue
        usable.append(ReviewedCase(image_id, path, LABELLED,
                                   encode(mask, RleConvention.RELATIVE) if mask.any() else EMPTY))
    return ReviewedCases(tuple(usable), tuple(refused))


def _image_shape(path: Path) -> tuple[int, int]:
    """(rows, columns) from the header alone where the format allows."""
    from pneumoviewer.io.dicom import DicomError, is_dicom_file, read_header

    if is_dicom_file(path) or path.suffix.lower() == ".dcm":
        metadata = read_header(path)
        return int(metadata.rows), int(metadata.columns)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, UnidentifiedImageError) as error:
        raise DicomError(path, f"not a readable image ({error})") from None


@dataclass(frozen=True)
class _Examples:
    images: list[data.LabelledImage]
    pixels: np.ndarray
    masks: np.ndarray

    @property
    def positive(self) -> np.ndarray:
        return np.asarray(self.masks.reshape(len(self.masks), -1).any(axis=1), dtype=bool)


def _load(images: Sequence[data.LabelledImage], size: int, cache_dir: Path,
          cancel: CancelCheck | None) -> tuple[_Examples, list[RefusedCase]]:
    """Examples through the training cache; an image that cannot be read is refused, not the run."""
    kept, pixels, masks, refused = [], [], [], []
    for image in images:
        raise_if_cancelled(cancel, "fine-tuning cancelled")
        try:
            small_pixels, small_mask = data.cached_example(image, size, cache_dir)
        except (FileProblem, OSError) as error:
            refused.append(RefusedCase(image.image_id, getattr(error, "reason", None) or str(error)))
            continue
        kept.append(image)
        pixels.append(small_pixels)
        masks.append(small_mask)
    empty = np.zeros((0, size, size))
    return _Examples(kept, np.stack(pixels) if pixels else empty.astype(np.uint8),
                     np.stack(masks) if masks else empty.astype(bool)), refused


@dataclass(frozen=True)
class DeveloperData:
    """The developers' SIIM data beside the checkout: rehearsal images and the bundled model's validation split."""

    training: list[data.LabelledImage]
    validation: list[data.LabelledImage]


def developer_data(card: ModelCard | None = None) -> DeveloperData | None:
    """The data the bundled model was trained on, where its card says (relative to the checkout); None if absent."""
    from pneumoviewer.model.card import load_card

    card = card or load_card(default_model_path())
    sources = (card.training.get("data") or {})
    root = resources_dir().parents[1]  # the checkout: `pneumoviewer/resources/` sits two levels below it
    images: list[data.LabelledImage] = []
    for name in ("primary", "extra"):
        source = sources.get(name) or {}
        labels, folder = root / str(source.get("labels", "")), root / str(source.get("images", ""))
        if not (source and labels.is_file() and folder.is_dir()):
            return None
        try:
            images += data.load_labelled_images(labels, folder, source=name)
        except FileProblem:
            return None
    validation_ids = set((card.training.get("split") or {}).get("validation_ids") or ())
    return DeveloperData([i for i in images if i.image_id not in validation_ids],
                         [i for i in images if i.image_id in validation_ids and i.source == "primary"])


def finetune(
    cases: ReviewedCases, options: FinetuneOptions, progress: ProgressCallback | None = None,
    phase: PhaseCallback | None = None, cancel: CancelCheck | None = None,
) -> FinetuneResult:
    """Fine-tune `options.start_model` on `cases` (see the module's recipe), gate it, write `<out>/model`.

    `progress(seconds done, seconds planned)` follows the whole run (the remainder is the ETA),
    `phase(text)` says what it is doing; `cancel()` is checked between steps (`errors.Cancelled`).
    Raises `TrainingDataError` when the usable cases leave no positive and negative to train and to hold out.
    """
    started = time.monotonic()
    say = phase or (lambda text: None)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(options.cache_dir) if options.cache_dir else out / "cache"
    device = select_device(options.threads)
    torch.manual_seed(options.seed)
    model, card = load_checkpoint(options.start_model, device=device)
    parent = {"fingerprint": model_fingerprint(options.start_model), "name": Path(options.start_model).stem,
              "created": card.created}
    spec = InputSpec.from_card(card)
    plan = _Plan(started, options.minutes * 60, progress)

    say("reading the reviewed images")
    site, unreadable = _load([data.LabelledImage(c.image_id, c.path, "site", (c.mask_rle,)) for c in cases.cases],
                             spec.size, cache_dir, cancel)
    cases = merge_refusals(cases, unreadable)
    train_images, holdout_images = data.split_validation(site.images, options.holdout_fraction, options.seed)
    _check_enough({"training": train_images, "held-out": holdout_images}, options)
    fit_images: list[data.LabelledImage] = []
    if options.fit_fraction:
        train_images, fit_images = data.split_validation(train_images, options.fit_fraction, options.seed + 1)
        _check_enough({"training": train_images, "fitting": fit_images}, options)
    index = {image.image_id: position for position, image in enumerate(site.images)}
    train = _subset(site, [index[i.image_id] for i in train_images])
    holdout = _subset(site, [index[i.image_id] for i in holdout_images])
    fit = _subset(site, [index[i.image_id] for i in fit_images]) if fit_images else train
    developers = developer_data() if options.rehearsal_images or options.forgetting else None
    rehearsal = None
    if developers is not None and options.rehearsal_images:
        say("reading the rehearsal images")
        rehearsal, _ = _load(_balanced_sample(developers.training, options.rehearsal_images, options.seed),
                             spec.size, cache_dir, cancel)
    plan.report()

    if options.adapt_batchnorm:
        say("adapting the statistics to the site's images")
        adapt_batchnorm(model, train.pixels, spec, device)
    say("training")
    steps = _train(model, spec, train, rehearsal, options, device, out, _run_key(parent, train_images, options),
                   plan, cancel)
    model.eval()

    candidate_card = ModelCard(network=card.network, normalisation=card.normalisation, settings=card.settings)
    say("fitting the triage point on the site's cases held apart from training" if fit_images else
        "fitting the triage point on the site's training cases")
    _fit_operating_points(model, candidate_card, fit, device, options.retune_settings, bool(fit_images))
    candidate_path = out / "model"
    minutes = round((time.monotonic() - started) / 60, 2)

    say("comparing the current and the candidate model on the held-out cases")
    current_model, current_card = load_checkpoint(options.start_model, device=device)
    report = _gate(current_model, current_card, model, candidate_card, holdout, device)
    if options.forgetting and developers is not None:
        say("measuring forgetting on the developers' validation split")
        validation, _ = _load(developers.validation, spec.size, cache_dir, cancel)
        report = _with_forgetting(report, current_model, current_card, model, candidate_card, validation, device)
    trained_on = tuple(image.image_id for image in train_images)
    held_out = tuple(image.image_id for image in holdout_images)
    candidate_card.metrics = {"held_out": report.candidate.to_dict(), "decision": report.decision.value}
    candidate_card.training = {
        "finetuned_from": parent,
        "trained_on_ids": list(trained_on),  # ids only: no names, paths or pixels of the site's patients
        "held_out_ids": list(held_out),
        "fitted_on_ids": [image.image_id for image in fit_images],  # held apart from training (fit_fraction)
        "refused": len(cases.refused),
        "rehearsal_images": 0 if rehearsal is None else len(rehearsal.images),
        "recipe": options.recipe(),
        "minutes": minutes,
        "steps": steps,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "gate": report.to_dict(),
    }
    save_checkpoint(candidate_path, model, candidate_card, half=True)
    (out / STATE_FILE).unlink(missing_ok=True)  # finished: nothing left to resume
    plan.finish()
    return FinetuneResult(candidate_path, report, cases, trained_on, held_out, minutes)


def _fit_operating_points(model: PneumothoraxNet, card: ModelCard, cases: _Examples, device: torch.device,
                          retune_settings: bool, fit_challenge_threshold: bool) -> None:
    """The calibration and both operating points fitted on `cases`; with `retune_settings` every
    post-processing setting too, with `fit_challenge_threshold` the challenge rule's presence threshold alone.

    `cases` are the site's training cases (optimistic: the candidate has seen them) or those held
    apart from training (`fit_fraction`); either way the gate measures the result on the held-out
    slice, which none of this has seen.
    """
    spec = InputSpec.from_card(card)
    settings = InferenceSettings.from_dict(card.settings)
    maps, presence = predict_maps(model, cases.pixels, spec, device, settings.tta)
    if retune_settings:
        settings, _ = tune_settings(ValidationSet(cases.pixels, cases.masks), maps, presence)
        kept: dict[str, Any] = {name: card.settings[name] for name in ("tta", "triage_by_presence_head")
                                if name in card.settings}
        settings = InferenceSettings.from_dict({**settings.to_dict(), **kept})  # what tuning does not decide
    elif fit_challenge_threshold:
        threshold, _ = fit_presence_threshold(cases.masks, maps, presence, settings)
        settings = replace(settings, presence_threshold=threshold)
    card.settings = settings.to_dict()
    gates = np.array([presence_score(p, float(h), settings) for p, h in zip(maps, presence, strict=True)])
    scores = np.array([triage_score(g, float(h), settings) for g, h in zip(gates, presence, strict=True)])
    truth = cases.positive
    card.calibration = fit_calibration(scores, truth).to_card()
    triage = metrics.threshold_for_sensitivity(scores, truth, DEFAULT_TRIAGE_SENSITIVITY)
    points = OperatingPoints(_point(triage, scores, truth), _point(settings.presence_threshold, gates, truth))
    card.operating_points = points.to_card()["operating_points"]


def _point(threshold: float, scores: np.ndarray, truth: np.ndarray) -> OperatingPoint:
    sensitivity, specificity = metrics.sensitivity_specificity(scores >= threshold, truth)
    return OperatingPoint(float(threshold), float(sensitivity), float(specificity))


def _check_enough(parts: dict[str, Sequence[data.LabelledImage]], options: FinetuneOptions) -> None:
    for name, images in parts.items():
        positives = sum(image.positive for image in images)
        if positives == 0 or positives == len(images):
            raise data.TrainingDataError(
                Path(options.out), f"the {name} part of the reviewed cases needs cases with and without a "
                f"pneumothorax ({len(images)} cases, {positives} positive): review more cases")


def _subset(examples: _Examples, rows: list[int]) -> _Examples:
    return _Examples([examples.images[row] for row in rows], examples.pixels[rows], examples.masks[rows])


def _balanced_sample(images: Sequence[data.LabelledImage], count: int, seed: int) -> list[data.LabelledImage]:
    """`count` images, half positive and half negative (as far as each class allows), seeded, by id."""
    generator = np.random.default_rng(seed)
    chosen: list[data.LabelledImage] = []
    for positive in (True, False):
        pool = sorted((image for image in images if image.positive == positive), key=lambda image: image.image_id)
        picks = generator.permutation(len(pool))[: count // 2]
        chosen += [pool[int(i)] for i in sorted(picks)]
    return chosen


def adapt_batchnorm(model: PneumothoraxNet, pixels: np.ndarray, spec: InputSpec, device: torch.device,
                    batch_size: int = 16) -> None:
    """Re-estimate the decoder's BatchNorm statistics on `pixels` (cached uint8 examples) and their mirrors.

    Label-free. The encoder's BatchNorm layers are left alone: they hold folded ImageNet statistics
    (identity) that training kept frozen (`network.freeze_encoder_batchnorm`).
    """
    from pneumoviewer.model.pipeline import prepare_batch

    layers = [m for m in model.unet.decoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.eval()
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over every batch
        layer.train()
    with torch.no_grad():
        for start in range(0, len(pixels), batch_size):
            batch = prepare_batch(data.dequantise(pixels[start:start + batch_size]), spec).to(device)
            model(batch)
            model(batch.flip(-1))
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    model.eval()


class _Plan:
    """Seconds done and planned for the whole run: preparing, the budget, then the gate (estimated)."""

    _AFTER_TRAINING_S = 60.0

    def __init__(self, started: float, budget_s: float, progress: ProgressCallback | None) -> None:
        self.started = started
        self.budget_s = budget_s
        self.progress = progress
        self.training_started: float | None = None

    def report(self, training_s: float = 0.0) -> None:
        if self.progress is None:
            return
        done = time.monotonic() - self.started
        before = (self.training_started or time.monotonic()) - self.started
        planned = before + self.budget_s + self._AFTER_TRAINING_S
        self.progress(int(done), int(max(planned, done + 1)))

    def finish(self) -> None:
        if self.progress is not None:
            done = int(time.monotonic() - self.started)
            self.progress(done, done)


def _run_key(parent: dict[str, Any], train_images: Sequence[data.LabelledImage], options: FinetuneOptions) -> str:
    described = json.dumps({"parent": parent["fingerprint"], "recipe": options.recipe(),
                            "cases": [(i.image_id, i.rle_rows) for i in train_images]}, sort_keys=True)
    return hashlib.sha256(described.encode("utf-8")).hexdigest()[:24]


def _train(model: PneumothoraxNet, spec: InputSpec, site: _Examples, rehearsal: _Examples | None,
           options: FinetuneOptions, device: torch.device, out: Path, run_key: str, plan: _Plan,
           cancel: CancelCheck | None) -> int:
    """Train within the budget (see the module's recipe); saves and resumes `<out>/finetune-state.pt`.

    Returns the number of steps done (this run's and those of the state it resumed)."""
    if options.encoder_lr_scale == 0:
        for parameter in model.unet.encoder.parameters():
            parameter.requires_grad_(False)
    groups = parameter_groups(model, options.encoder_lr_scale if options.encoder_lr_scale else 1.0)
    groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in groups]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=options.learning_rate, weight_decay=1e-4)
    budget_s = options.minutes * 60
    elapsed, step = _resume(out, run_key, model, optimizer, device)
    sources = [_Source(site, spec, options.seed + step, balanced=options.site_sampling == "balanced")]
    if rehearsal is not None and len(rehearsal.images):
        sources.append(_Source(rehearsal, spec, options.seed + 1 + step))
    half = options.batch_size // 2
    share = [options.batch_size - half, half] if len(sources) == 2 else [options.batch_size]
    plan.training_started = time.monotonic() - elapsed
    last_save = time.monotonic()
    while elapsed < budget_s:
        raise_if_cancelled(cancel, "fine-tuning cancelled")
        step_started = time.monotonic()
        fraction = elapsed / budget_s
        rate = options.learning_rate * (min(1.0, fraction / 0.05) if fraction < 0.05 else
                                        0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * fraction)))
        for group in optimizer.param_groups:
            group["lr"] = group.get("lr_scale", 1.0) * rate
        batches = [source.batch(count) for source, count in zip(sources, share, strict=True)]
        images, masks, presence = (torch.cat([b[k] for b in batches]).to(device) for k in range(3))
        model.train()
        for module in model.modules():  # every BatchNorm keeps the adapted (or pretrained) statistics
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        mask_logits, presence_logits = model(images)
        loss = segmentation_loss(mask_logits, presence_logits, masks, presence)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        elapsed += time.monotonic() - step_started
        plan.report()
        if time.monotonic() - last_save >= options.checkpoint_minutes * 60:
            _save_state(out, run_key, model, optimizer, elapsed, step)
            last_save = time.monotonic()
    model.eval()
    return step


class _Source:
    """Batches of augmented examples from one set: balanced (positives and negatives equally) or each example
    equally often."""

    def __init__(self, examples: _Examples, spec: InputSpec, seed: int, balanced: bool = True) -> None:
        augmentation = data.training_augmentation(seed)
        data.seed_augmentation(augmentation, seed)
        self.dataset = data.RadiographDataset(examples.pixels, examples.masks, spec, augmentation)
        self.weights = (data.balanced_sample_weights(examples.positive.tolist()) if balanced else
                        torch.ones(len(examples.images), dtype=torch.double))
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = torch.multinomial(self.weights, count, replacement=True, generator=self.generator).tolist()
        items = [self.dataset[row] for row in rows]
        return tuple(torch.stack([item[k] for item in items]) for k in range(3))  # type: ignore[return-value]


def _save_state(out: Path, run_key: str, model: nn.Module, optimizer: torch.optim.Optimizer, elapsed: float,
                step: int) -> None:
    buffer = io.BytesIO()
    torch.save({"run": run_key, "elapsed": elapsed, "step": step,
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict()}, buffer)
    atomic_write_bytes(out / STATE_FILE, buffer.getvalue())


def _resume(out: Path, run_key: str, model: nn.Module, optimizer: torch.optim.Optimizer,
            device: torch.device) -> tuple[float, int]:
    """(seconds, steps) already done by this very run, restored from its saved state; (0, 0) otherwise."""
    path = out / STATE_FILE
    if not path.is_file():
        return 0.0, 0
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if state.get("run") != run_key:
            return 0.0, 0
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except Exception:  # noqa: BLE001 - a damaged state only means starting this run over
        return 0.0, 0
    return float(state["elapsed"]), int(state["step"])


def _gate(current: PneumothoraxNet, current_card: ModelCard, candidate: PneumothoraxNet,
          candidate_card: ModelCard, holdout: _Examples, device: torch.device) -> gate.GateReport:
    current_figures, current_images = gate.run_on_examples(current, current_card, holdout.pixels, holdout.masks,
                                                           device)
    candidate_figures, candidate_images = gate.run_on_examples(candidate, candidate_card, holdout.pixels,
                                                               holdout.masks, device)
    return gate.decide(current_figures, candidate_figures, current_images, candidate_images)


def _with_forgetting(report: gate.GateReport, current: PneumothoraxNet, current_card: ModelCard,
                     candidate: PneumothoraxNet, candidate_card: ModelCard, validation: _Examples,
                     device: torch.device) -> gate.GateReport:
    if not len(validation.images):
        return report
    figures = {name: gate.run_on_examples(model, card, validation.pixels, validation.masks, device)[0]
               for name, model, card in (("current", current, current_card),
                                         ("candidate", candidate, candidate_card))}
    return replace(report, forgetting=figures)


def result_summary(result: FinetuneResult) -> dict[str, Any]:
    """A JSON-ready summary (the CLI's last line for the app): where the model is, the gate, the refusals."""
    return {"model": str(result.model), "gate": result.report.to_dict(), "minutes": result.minutes,
            "trained_on": len(result.trained_on), "held_out": len(result.held_out),
            "refused": [asdict(refusal) for refusal in result.cases.refused]}
