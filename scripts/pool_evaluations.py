"""Several `pneumoviewer evaluate --json` files pooled into one: each fold's held-out films through its own network.

    .venv/bin/python scripts/pool_evaluations.py OUT.json FOLD0.json FOLD1.json ... [--resamples 2000]

A k-fold recipe is measured out of fold by evaluating every fold's network on the films it held out (and on
their site twin) and pooling the per-image rows: one film, one prediction by a network that never trained on
it. OUT.json holds the pooled `per_image` rows (so `scripts/compare_evaluations.py` pairs it with another
pooled file) and the pooled figures with 95 % bootstrap intervals, which are also printed. The files must
not share a film (folds are disjoint).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pneumoviewer import metrics
from pneumoviewer.io.atomic import atomic_write_text


def pooled_figures(rows: list[dict], resamples: int) -> dict[str, dict[str, float]]:
    """Challenge score, all-empty, gain, ROC AUC, sensitivity at 90 % specificity, the triage flag and
    the challenge call's sensitivity/specificity: each {"value", "low", "high"}."""
    truth = np.array([row["truth_positive"] for row in rows], dtype=bool)
    columns = {key: np.array([row[key] for row in rows], dtype=float)
               for key in ("score", "dice", "flagged", "called_positive")}

    def share(flags: np.ndarray, of: np.ndarray) -> float:
        return float(flags[of].mean()) if of.any() else float("nan")

    def figures(picked: np.ndarray) -> dict[str, float]:
        actual, dice = truth[picked], columns["dice"][picked]
        scores, flagged, called = (columns[key][picked] for key in ("score", "flagged", "called_positive"))
        both_kinds = actual.any() and not actual.all()
        return {
            "challenge_score": float(dice.mean()),
            "all_empty_score": float(1.0 - actual.mean()),
            "gain_over_all_empty": float(dice.mean() - (1.0 - actual.mean())),
            "roc_auc": metrics.roc_auc(scores, actual) if both_kinds else float("nan"),
            "sensitivity_at_90_specificity":
                metrics.sensitivity_at_specificity(scores, actual, 0.90) if both_kinds else float("nan"),
            "triage_flag_sensitivity": share(flagged > 0, actual),
            "triage_flag_specificity": share(flagged == 0, ~actual),
            "challenge_call_sensitivity": share(called > 0, actual),
            "challenge_call_specificity": share(called == 0, ~actual),
        }

    every = np.arange(len(rows))
    values = figures(every)
    pooled = {}
    for name, value in values.items():
        low, high = metrics.bootstrap_interval(lambda picked, name=name: figures(picked)[name], len(rows),
                                               resamples=resamples)
        pooled[name] = {"value": value, "low": low, "high": high}
    return pooled


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
    for name, figure in figures.items():
        print(f"{name:32}{figure['value']:>8.4f}   ({figure['low']:.4f}–{figure['high']:.4f})")
    atomic_write_text(args.out, json.dumps({
        "sources": [str(path) for path in args.evaluations], "images_evaluated": len(rows),
        "positive_images": positives, "figures": figures, "per_image": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
