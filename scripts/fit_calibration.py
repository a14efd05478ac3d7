#!/usr/bin/env python3
"""Fit a model card's calibration and triage point on held-out images, and print their honest figures.

  scripts/fit_calibration.py EVALUATION_JSON CARD [--folds 5] [--sensitivity 0.9] [--method auto]
                             [--report REPORT_JSON]

EVALUATION_JSON is `pneumoviewer evaluate --json` of the model on images it never trained on (for
v1: its 269 validation ids, `--ids resources/models/default.json`). The card's "calibration",
"operating_points" and "operating_curve" are replaced by ones fitted on all those images
(`training.calibrate.card_entries`); nothing else in the card changes, and its weights are never
touched. The figures printed (and written to REPORT_JSON) are cross-fitted over `--folds` stratified
folds of the images (`training.calibrate.cross_fitted`). `--method auto` keeps the calibration with
the lower cross-fitted Brier score.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pneumoviewer.io.atomic import atomic_write_text  # noqa: E402
from pneumoviewer.model.calibration import METHODS  # noqa: E402
from pneumoviewer.training.calibrate import card_entries, cross_fitted, honest_report, markdown_tables  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fit_calibration.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluation", type=Path, metavar="EVALUATION_JSON")
    parser.add_argument("card", type=Path, metavar="CARD")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sensitivity", type=float, default=0.9, help="the triage point's sensitivity")
    parser.add_argument("--method", choices=("auto", *METHODS), default="auto")
    parser.add_argument("--report", type=Path, help="write the cross-fitted figures here (JSON)")
    args = parser.parse_args(argv)
    evaluation = json.loads(args.evaluation.read_text())
    card = json.loads(args.card.read_text())
    per_image = evaluation["per_image"]
    scores = np.array([row["score"] for row in per_image])
    truth = np.array([row["truth_positive"] for row in per_image])
    called = np.array([row["called_positive"] for row in per_image])
    crossfit = cross_fitted(scores, truth, args.folds, args.sensitivity)
    method = crossfit.best_method(truth) if args.method == "auto" else args.method
    entries = card_entries(scores, truth, called, float(evaluation["settings"]["presence_threshold"]), method,
                           args.sensitivity, crossfit)
    card.update(entries)
    atomic_write_text(args.card, json.dumps(card, indent=2) + "\n")
    report = {**honest_report(scores, truth, called, crossfit, method), "fitted_on": str(args.evaluation),
              "card": entries["operating_points"]}
    if args.report is not None:
        atomic_write_text(args.report, json.dumps(report, indent=2) + "\n")
    print(markdown_tables(report))
    print(f"\n{args.card}: calibration ({method}), operating points and curve ({len(entries['operating_curve'])} "
          f"points) fitted on {len(per_image)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
