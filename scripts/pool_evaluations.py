"""Several `pneumoviewer evaluate --json` files pooled into one: each fold's held-out films through its own network.

    .venv/bin/python scripts/pool_evaluations.py OUT.json FOLD0.json FOLD1.json ... [--resamples 2000]

A k-fold recipe is measured out of fold by evaluating every fold's network on the films it held out (and on
their site twin) and pooling the per-image rows: one film, one prediction by a network that never trained on
it. OUT.json holds the pooled `per_image` rows (so `scripts/compare_evaluations.py` pairs it with another
pooled file) and the pooled figures with 95 % bootstrap intervals (the ship report's, `ship.figures_with_intervals`,
and both calls' sensitivity and specificity), which are also printed. The files must
not share a film (folds are disjoint).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from pneumoviewer import metrics
from pneumoviewer.io.atomic import atomic_write_text
from pneumoviewer.training.ship import figures_with_intervals


def pooled_figures(rows: list[dict], resamples: int) -> dict:
    """The ship protocol's figures (`ship.figures_with_intervals`: challenge score, all-empty, gain, ROC AUC,
    sensitivity at 90 % specificity, each with its interval) and the triage flag's and the challenge call's
    sensitivity and specificity with theirs (`metrics.call_figures`)."""
    truth = np.array([row["truth_positive"] for row in rows], dtype=bool)

    def column(key: str) -> np.ndarray:
        return np.array([row[key] for row in rows])

    figures = figures_with_intervals(column("score").astype(float), column("called_positive").astype(bool),
                                     column("dice").astype(float), truth, resamples)
    figures["triage_flag"] = asdict(metrics.call_figures(column("flagged").astype(bool), truth, resamples))
    figures["challenge_call"] = asdict(metrics.call_figures(column("called_positive").astype(bool), truth, resamples))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("evaluations", type=Path, nargs="+")
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args(argv)
    rows: list[dict] = []
    seen: dict[str, Path] = {}
    for path in args.evaluations:
        try:
            part = json.loads(path.read_text())["per_image"]
        except (OSError, ValueError, KeyError) as error:
            print(f"{path}: not a `pneumoviewer evaluate --json` file ({error})", file=sys.stderr)
            return 1
        for row in part:
            if row["image_id"] in seen:
                print(f"{path} and {seen[row['image_id']]} both hold {row['image_id']}: folds must not overlap",
                      file=sys.stderr)
                return 1
            seen[row["image_id"]] = path
        rows.extend(part)
    if not rows:
        print("no images in these files", file=sys.stderr)
        return 1
    figures = pooled_figures(rows, args.resamples)
    positives = sum(bool(row["truth_positive"]) for row in rows)
    print(f"{len(rows)} images ({positives} positive) from {len(args.evaluations)} file(s)")
    for name in ("challenge_score", "all_empty_score", "gain_over_all_empty", "roc_auc",
                 "sensitivity_at_90_specificity"):
        low, high = figures[f"{name}_interval"]
        print(f"{name:32}{figures[name]:>8.4f}   ({low:.4f}–{high:.4f})")
    for call in ("triage_flag", "challenge_call"):
        for side in ("sensitivity", "specificity"):
            low, high = figures[call][f"{side}_interval"]
            print(f"{call + ' ' + side:32}{figures[call][side]:>8.4f}   ({low:.4f}–{high:.4f})")
    atomic_write_text(args.out, json.dumps({
        "sources": [str(path) for path in args.evaluations], "images_evaluated": len(rows),
        "positive_images": positives, "figures": figures, "per_image": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
