"""Does the model read chest drains instead of the air?

Many SIIM positives were filmed with a chest drain already in place, so a model can learn "tube =
pneumothorax". `docs/drain-labels.csv` says, for each of v1's 269 validation DICOMs, whether a chest
drain (intercostal tube or pigtail catheter) is visible: yes, no or unsure (read from thumbnails by an
engineer who saw neither the ground truth nor the AI's score; not a radiologist). This predicts those
films and compares the AI on films with and without a drain:

- among the positives: does a drain make the AI more likely to find the pneumothorax?
- among the negatives: does a drain alone raise the score (false alarms a shortcut would cause)?

"Unsure" films are left out of both groups. Intervals are 95 % percentile bootstraps over images.
A model that trained on some of these films (v2 trained on four fifths of them) is read honestly
with `--held-out RUN ...`: each film's prediction then comes from the campaign folds' out-of-fold
`oof.npz`, through the --model card's settings, calibration and triage point, and only the films
those runs held out are counted.

Usage: .venv/bin/python scripts/check_drain_shortcut.py [--model M] [--held-out RUN ...] [--drains CSV]
       [--images DIR] [--labels CSV]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pneumoviewer import metrics
from pneumoviewer.io.images import load_radiograph
from pneumoviewer.model.inference import Predictor
from pneumoviewer.model.operating_points import flagged
from pneumoviewer.paths import default_model_path
from pneumoviewer.training import ship
from pneumoviewer.training.data import load_labelled_images
from pneumoviewer.training.predictions import HeldOut, read_predictions

_ROOT = Path(__file__).resolve().parents[1]
_SHARED = _ROOT.parent / "shared" / "data" / "siim"


def read_drain_labels(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["ImageId"]: row["drain"] for row in csv.DictReader(handle)}


def describe(name: str, rows: np.ndarray, probability: np.ndarray, flagged: np.ndarray, called: np.ndarray) -> None:
    """One group's line: how many, mean probability, share flagged (triage) and called (challenge rule)."""
    if rows.size == 0:
        print(f"  {name}: none")
        return
    share_flagged = metrics.bootstrap_interval(lambda pick: float(flagged[rows][pick].mean()), rows.size)
    print(f"  {name}: {rows.size} films, mean probability {probability[rows].mean():.3f}, "
          f"flagged {flagged[rows].mean():.2f} ({share_flagged[0]:.2f}-{share_flagged[1]:.2f}), "
          f"called by the challenge rule {called[rows].mean():.2f}")


def auc_with_interval(scores: np.ndarray, truth: np.ndarray) -> str:
    low, high = metrics.bootstrap_interval(lambda pick: metrics.roc_auc(scores[pick], truth[pick]), scores.size)
    return f"{metrics.roc_auc(scores, truth):.3f} ({low:.3f}-{high:.3f})"


# Per film: (positive, triage score, calibrated probability, flagged at the triage point, called by the challenge rule).
FilmOutcome = tuple[bool, float, float, bool, bool]


def predicted_films(model: Path, images: Path, labels: Path, drains: dict[str, str]) -> dict[str, FilmOutcome]:
    """Every drain-labelled film predicted by `model`, as the app would."""
    predictor = Predictor(model)
    labelled = {image.image_id: image for image in load_labelled_images(labels, images, source="primary")}
    outcomes = {}
    for image_id in tqdm(drains, desc="predicting", unit="img"):
        prediction = predictor.predict(load_radiograph(labelled[image_id].path).pixels)
        outcomes[image_id] = (labelled[image_id].positive, prediction.score, prediction.pneumothorax_probability,
                              prediction.flagged, prediction.positive)
    return outcomes


def held_out_films(runs: list[Path], model: Path, drains: dict[str, str]) -> dict[str, FilmOutcome]:
    """The drain-labelled films these runs held out, from their out-of-fold predictions under `model`'s card."""
    predictor = Predictor(model)  # its settings, calibration and triage point, as the app applies them
    outcome = ship.per_image(HeldOut.concatenate([read_predictions(run) for run in runs]), predictor.settings)
    triage = predictor.operating_points.triage.threshold
    return {image_id: (bool(truth), float(score), predictor.pneumothorax_probability(score), flagged(score, triage),
                       bool(called))
            for image_id, truth, score, called in zip(outcome.image_ids, outcome.truth, outcome.scores,
                                                      outcome.called, strict=True) if image_id in drains}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--drains", type=Path, default=_ROOT / "docs" / "drain-labels.csv")
    parser.add_argument("--images", type=Path, default=_SHARED)
    parser.add_argument("--labels", type=Path, default=_SHARED / "train-rle.csv")
    parser.add_argument("--held-out", nargs="+", type=Path, metavar="RUN",
                        help="campaign runs (folders holding oof.npz): their out-of-fold predictions instead of "
                        "running --model, whose card gives the settings, calibration and triage point")
    args = parser.parse_args()

    drains = read_drain_labels(args.drains)
    films = held_out_films(args.held_out, args.model, drains) if args.held_out else predicted_films(
        args.model, args.images, args.labels, drains)
    actual, score, probability, flagged, called = (np.array(column) for column in zip(*films.values(), strict=True))
    drain = np.array([drains[image_id] for image_id in films])

    print(f"{len(films)} films ({int(actual.sum())} positive); drain yes/no/unsure: "
          f"{(drain == 'yes').sum()}/{(drain == 'no').sum()}/{(drain == 'unsure').sum()}")
    print(f"drain visible among positives {(drain[actual] == 'yes').mean():.2f}, "
          f"among negatives {(drain[~actual] == 'yes').mean():.2f} (unsure counted as no drain here)")
    for truth, title in ((True, "positives"), (False, "negatives")):
        print(title)
        for label in ("yes", "no"):
            describe(f"drain {label}", np.flatnonzero((actual == truth) & (drain == label)), probability, flagged,
                     called)

    negatives = np.flatnonzero(~actual)
    print("ranking (ROC AUC of the triage score against all negatives):")
    for label in ("yes", "no"):
        rows = np.concatenate([np.flatnonzero(actual & (drain == label)), negatives])
        print(f"  positives with drain {label}: AUC {auc_with_interval(score[rows], actual[rows])}")
    clear = np.flatnonzero(drain != "unsure")
    print("does a drain alone raise the score? among negatives, ROC AUC of the score for 'drain yes' vs 'no':")
    rows = np.intersect1d(clear, negatives)
    print(f"  {auc_with_interval(score[rows], drain[rows] == 'yes')} (0.5 = no effect; {rows.size} negatives)")


if __name__ == "__main__":
    main()
