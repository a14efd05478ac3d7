"""Two models on the same films, paired: the differences of their figures with bootstrap intervals.

    .venv/bin/python scripts/compare_evaluations.py BASELINE.json CANDIDATE.json [--resamples 2000]

Each file is `pneumoviewer evaluate --json` output over the same images (the campaign's recipe steps are
judged this way: docs/model.md, "Training campaign"). Images are resampled together, so the interval is of
the paired difference (candidate - baseline), not of two separate figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pneumoviewer import metrics


def per_image(path: Path) -> dict[str, dict]:
    return {row["image_id"]: row for row in json.loads(path.read_text())["per_image"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args(argv)
    baseline, candidate = per_image(args.baseline), per_image(args.candidate)
    shared = sorted(baseline.keys() & candidate.keys())
    if not shared:
        print(f"{args.baseline} and {args.candidate} share no image", file=sys.stderr)
        return 1
    truth = np.array([baseline[i]["truth_positive"] for i in shared])
    if np.any(truth != np.array([candidate[i]["truth_positive"] for i in shared])):
        print("the two files disagree on which images are positive: not the same labels", file=sys.stderr)
        return 1
    columns = {name: {key: np.array([rows[i][key] for i in shared], dtype=float) for key in ("score", "dice")}
               for name, rows in (("baseline", baseline), ("candidate", candidate))}

    def figures(name: str, rows: np.ndarray) -> dict[str, float]:
        scores, dice, actual = columns[name]["score"][rows], columns[name]["dice"][rows], truth[rows]
        both_kinds = actual.any() and not actual.all()
        return {
            "challenge score": float(dice.mean()),
            "ROC AUC": metrics.roc_auc(scores, actual) if both_kinds else float("nan"),
            "sensitivity at 90 % specificity":
                metrics.sensitivity_at_specificity(scores, actual, 0.90) if both_kinds else float("nan"),
        }

    every = np.arange(len(shared))
    before, after = figures("baseline", every), figures("candidate", every)
    print(f"{len(shared)} images ({int(truth.sum())} positive); all-empty challenge score {1 - truth.mean():.4f}")
    print(f"{'figure':34}{'baseline':>10}{'candidate':>11}{'change':>9}   95 % interval of the change")
    for name in before:
        low, high = metrics.bootstrap_interval(
            lambda rows, name=name: figures("candidate", rows)[name] - figures("baseline", rows)[name],
            len(shared), resamples=args.resamples)
        print(f"{name:34}{before[name]:>10.4f}{after[name]:>11.4f}{after[name] - before[name]:>+9.4f}"
              f"   {low:+.4f} … {high:+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
