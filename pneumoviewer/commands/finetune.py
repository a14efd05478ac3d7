"""`pneumoviewer finetune`: fine-tune the current model on reviewed cases, gate it, write the candidate."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail, report
from pneumoviewer.errors import Cancelled, FileProblem
from pneumoviewer.training.finetune_recipe import SITE_SAMPLING

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers

EXIT_CANDIDATE_LOST = 3


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune the AI on a site's reviewed cases and compare it with the current model",
        description="Fine-tune the current model (the bundled one, or --from) on reviewed cases: a challenge-format "
        "CSV with its images (--labels/--images), or what the app autosaved for a folder (--session). A stratified "
        "slice (--holdout-fraction) is held out and never trained on; the gate table compares the current and the "
        "candidate model on it. Writes OUT/model.safetensors and its card OUT/model.json whether or not the "
        "candidate won (the table and the card say which). Exit 0, or 3 with --require-better when it lost.",
    )
    parser.add_argument("--labels", type=Path,
                        help="challenge-format CSV of the reviewed cases (ImageId, EncodedPixels)")
    parser.add_argument("--images", type=Path, help="folder holding <ImageId>.dcm/.png/.jpg (recursively)")
    parser.add_argument("--session", type=Path, metavar="FOLDER",
                        help="instead of --labels/--images: the reviews the app autosaved for this folder")
    parser.add_argument("--cases", type=Path, help=argparse.SUPPRESS)  # the app's snapshot of reviewed cases
    parser.add_argument("--out", type=Path, required=True, help="output folder (the candidate, its state, a cache)")
    parser.add_argument("--from", dest="start_model", type=Path, metavar="MODEL",
                        help="the model to start from (default: the bundled model)")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time budget in minutes (default 5)")
    parser.add_argument("--holdout-fraction", type=float, default=0.25,
                        help="share of the reviewed cases held out for the gate (default 0.25)")
    parser.add_argument("--require-better", action="store_true",
                        help=f"exit {EXIT_CANDIDATE_LOST} unless the gate finds the candidate better")
    parser.add_argument("--no-rehearsal", action="store_true",
                        help="do not mix the developers' SIIM training images into the batches")
    parser.add_argument("--no-forgetting", action="store_true",
                        help="do not score both models on the developers' SIIM validation split")
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--encoder-lr-scale", type=float, default=0.0,
                        help="the encoder's rate as a share of --learning-rate (default 0: encoder not trained)")
    parser.add_argument("--adapt-batchnorm", action="store_true",
                        help="first re-estimate the decoder's BatchNorm statistics on the site's images")
    parser.add_argument("--fit-fraction", type=float, default=0.0,
                        help="share of the training cases held apart from training, on which the candidate's "
                        "calibration, operating points and challenge threshold are fitted (default 0: fitted on "
                        "the training cases themselves, which the candidate has seen)")
    parser.add_argument("--site-sampling", choices=SITE_SAMPLING, default="balanced",
                        help="the site half of each batch: balanced draws positives and negatives equally "
                        "(default), prevalence every case equally often, at the site's own share of positives")
    parser.add_argument("--cache-dir", type=Path, help="decoded-image cache (default: OUT/cache)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores but one)")
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--progress-json", action="store_true",
                        help="report progress as JSON lines on stdout (for the app)")
    parser.add_argument("--low-priority", action="store_true", help=argparse.SUPPRESS)  # the app's child process
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    sources = [args.session is not None, args.cases is not None, args.labels is not None or args.images is not None]
    if sum(sources) != 1 or (sources[2] and (args.labels is None or args.images is None)):
        return fail("give --labels and --images, or --session FOLDER", status=2)
    if not 0 < args.holdout_fraction < 1:
        return fail("--holdout-fraction must be between 0 and 1", status=2)
    if args.minutes <= 0:
        return fail("--minutes must be more than 0", status=2)
    if not 0 <= args.fit_fraction < 1:
        return fail("--fit-fraction must be at least 0 and below 1", status=2)

    from pneumoviewer.paths import default_model_path
    from pneumoviewer.review.training_set import autosaved_cases, read_snapshot
    from pneumoviewer.training.finetune import FinetuneOptions, cases_from_csv, finetune, result_summary
    from pneumoviewer.training.gate import Decision, gate_table, table_rows

    if args.low_priority and hasattr(os, "nice"):
        os.nice(10)  # the app's window and the reader's work come first
    emit = _Reporter(args.progress_json)
    try:
        if args.session is not None:
            cases = autosaved_cases(args.session)
        elif args.cases is not None:
            cases = read_snapshot(args.cases)
        else:
            cases = cases_from_csv(args.labels, args.images)
        for refusal in cases.refused:
            report(f"case {refusal} (left out)")
        emit.say(f"{len(cases.cases)} reviewed cases ({cases.positives} with a pneumothorax), "
                 f"{len(cases.refused)} refused")
        options = FinetuneOptions(
            out=args.out, start_model=args.start_model or default_model_path(), minutes=args.minutes,
            holdout_fraction=args.holdout_fraction, seed=args.seed, learning_rate=args.learning_rate,
            encoder_lr_scale=args.encoder_lr_scale, rehearsal_images=0 if args.no_rehearsal else 240,
            adapt_batchnorm=args.adapt_batchnorm, fit_fraction=args.fit_fraction, site_sampling=args.site_sampling,
            forgetting=not args.no_forgetting, cache_dir=args.cache_dir, threads=args.threads,
        )
        result = finetune(cases, options, progress=emit.progress, phase=emit.say)
    except Cancelled:
        return fail("fine-tuning cancelled")
    except FileProblem as error:
        return fail(error)
    if args.progress_json:
        rows = {"table_rows": table_rows(result.report.current, result.report.candidate),
                "forgetting_rows": None if result.report.forgetting is None else
                table_rows(result.report.forgetting["current"], result.report.forgetting["candidate"])}
        print(json.dumps({"event": "finished", **result_summary(result), **rows}), flush=True)
    else:
        print(gate_table(result.report))
        print(f"candidate written to {result.model}.safetensors (+ .json card); trained on "
              f"{len(result.trained_on)} cases, {len(result.held_out)} held out, {result.minutes:.1f} min")
    if args.require_better and result.report.decision is not Decision.BETTER:
        return EXIT_CANDIDATE_LOST
    return 0


class _Reporter:
    """Progress for a person (a line per phase on stderr) or for the app (JSON lines on stdout)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.last_percent = -1

    def say(self, text: str) -> None:
        if self.as_json:
            print(json.dumps({"event": "phase", "text": text}), flush=True)
        else:
            print(f"pneumoviewer finetune: {text}", file=sys.stderr, flush=True)

    def progress(self, done: int, total: int) -> None:
        if not self.as_json:
            return
        percent = int(100 * done / max(1, total))
        if percent != self.last_percent:
            self.last_percent = percent
            print(json.dumps({"event": "progress", "done": done, "total": total}), flush=True)
