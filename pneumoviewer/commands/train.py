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
        "<ImageId>.dcm/.png/.jpg. Validation images are drawn from --labels only (a stratified, seeded split), "
        "never from the extra set. Writes OUT/last and OUT/best after every epoch, then OUT/model "
        "(.safetensors + .json model card, settings tuned on the validation split).",
    )
    parser.add_argument("--labels", type=Path, required=True, help="train-rle.csv of the primary (DICOM) images")
    parser.add_argument("--images", type=Path, required=True, help="folder holding the primary images")
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
    parser.add_argument("--steps-per-epoch", type=int, help="default: one pass over the training images")
    parser.add_argument("--validation-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--cache-dir", type=Path, help="decoded-image cache (default: OUT/cache)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores but one)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last after its last finished epoch")
    parser.add_argument(
        "--ship", choices=("last", "best"), default="last",
        help="the epoch written as OUT/model: the last (default) or the best by per-epoch validation score",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.training.train import TrainingOptions, train

    options = TrainingOptions(
        labels=args.labels, images=args.images, out=args.out, extra_labels=args.extra_labels,
        extra_images=args.extra_images, encoder_weights=args.encoder_weights, epochs=args.epochs,
        input_size=args.input_size, batch_size=args.batch_size, learning_rate=args.learning_rate,
        steps_per_epoch=args.steps_per_epoch, validation_fraction=args.validation_fraction, seed=args.seed,
        cache_dir=args.cache_dir, threads=args.threads, resume=args.resume, ship=args.ship,
    )
    try:
        model = train(options)
    except FileProblem as error:  # labels, images, checkpoints: each names its file
        return fail(error)
    except FileNotFoundError as error:
        return fail(f"{error.filename}: file not found")
    print(f"model written to {model}.safetensors (+ .json card)")
    return 0
