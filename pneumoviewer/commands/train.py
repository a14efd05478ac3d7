"""`pneumoviewer train`: train the U-Net with presence head on labelled radiographs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail
from pneumoviewer.errors import FileProblem

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a pneumothorax model on labelled radiographs (SIIM-ACR train-rle.csv format)",
        description="Train the U-Net with presence head. Images are found recursively in --images as "
        "<ImageId>.dcm/.png/.jpg. Validation images are drawn from --labels only (a stratified, seeded split, "
        "or one fold of --folds), never from the extra set. Saves the resumable state OUT/last-state.pt every "
        "--checkpoint-minutes and OUT/last and OUT/best after every epoch, then OUT/model (.safetensors + .json "
        "model card, settings tuned on the validation images) and OUT/oof.npz (their held-out predictions).",
    )
    parser.add_argument("--labels", type=Path, help="train-rle.csv of the primary (DICOM) images")
    parser.add_argument("--images", type=Path, help="folder holding the primary images")
    parser.add_argument("--pack", type=Path,
                        help="an image pack (scripts/campaign.py pack) instead of --labels/--images/--extra-*")
    parser.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, cache)")
    parser.add_argument("--extra-labels", type=Path, help="train-rle.csv of extra training-only images")
    parser.add_argument("--extra-images", type=Path, help="folder holding the extra images")
    parser.add_argument("--encoder-weights", type=Path,
                        help="ImageNet MobileNetV2 weights (.safetensors, torchvision layout) to start the encoder "
                        "from")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--encoder-lr-scale", type=float, default=1.0,
                        help="the pretrained encoder's learning rate as a share of --learning-rate (e.g. 0.1)")
    parser.add_argument("--rendering-augmentation", action="store_true",
                        help="also vary films as another site's processing would: edge enhancement, tone curve, noise")
    parser.add_argument("--ema-decay", type=float, default=0.0,
                        help="validate and ship an exponential moving average of the weights with this decay per "
                             "step (e.g. 0.998); default 0: the weights as trained")
    parser.add_argument("--steps-per-epoch", type=int, help="default: one pass over the training images")
    parser.add_argument("--validation-fraction", type=float, default=0.25,
                        help="share of the primary images held out (when --folds is not given)")
    parser.add_argument("--folds", type=int,
                        help="k-fold cross-validation: split the primary images into K stratified folds by image")
    parser.add_argument("--fold", type=int, default=0, help="with --folds: the fold (0-based) that validates")
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--cache-dir", type=Path, help="decoded-image cache (default: OUT/cache)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores but one)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from OUT/last-state.pt, mid-epoch; starts fresh when OUT holds no state")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0,
                        help="save the resumable state at least this often (default 5) and after every epoch")
    parser.add_argument("--log-file", type=Path, help="append one JSON line per start, epoch and finish")
    parser.add_argument(
        "--ship", choices=("last", "best"), default="last",
        help="the epoch written as OUT/model: the last (default) or the best by per-epoch validation score",
    )
    parser.add_argument("--rebuild-held-out", action="store_true",
                        help="train nothing: write OUT/oof.npz again from the finished OUT/model, on the split "
                        "these arguments make (for a run carried to another machine without its predictions)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.training.train import TrainingOptions, rebuild_held_out, train

    if args.pack is None and (args.labels is None or args.images is None):
        return fail("give --labels and --images (or --pack)", status=2)
    if args.pack is not None and any(v is not None for v in (args.labels, args.images, args.extra_labels)):
        return fail("--pack holds the labels and images: give it without --labels/--images/--extra-labels", status=2)
    if args.folds is not None and not (args.folds >= 2 and 0 <= args.fold < args.folds):
        return fail(f"--fold {args.fold} of --folds {args.folds}: need K >= 2 and 0 <= I < K", status=2)
    try:
        options = TrainingOptions(
            labels=args.labels, images=args.images, out=args.out, extra_labels=args.extra_labels,
            extra_images=args.extra_images, pack=args.pack, encoder_weights=args.encoder_weights, epochs=args.epochs,
            input_size=args.input_size, batch_size=args.batch_size, learning_rate=args.learning_rate,
            encoder_lr_scale=args.encoder_lr_scale, rendering_augmentation=args.rendering_augmentation,
            ema_decay=args.ema_decay,
            steps_per_epoch=args.steps_per_epoch,
            validation_fraction=args.validation_fraction, folds=args.folds, fold=args.fold, seed=args.seed,
            cache_dir=args.cache_dir, threads=args.threads, resume=args.resume,
            checkpoint_minutes=args.checkpoint_minutes, log_file=args.log_file, ship=args.ship,
        )
    except ValueError as error:  # an option out of its range (TrainingOptions checks it)
        return fail(str(error), status=2)
    try:
        if args.rebuild_held_out:
            print(f"held-out predictions written to {rebuild_held_out(options)}")
            return 0
        model = train(options)
    except FileProblem as error:  # labels, images, checkpoints: each names its file
        return fail(error)
    except FileNotFoundError as error:
        return fail(f"{error.filename}: file not found")
    print(f"model written to {model}.safetensors (+ .json card)")
    return 0
