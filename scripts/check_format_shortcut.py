"""Does the model read the file format instead of the disease?

The extra training images (../shared/data/siim-extra) are JPEG/PNG exports and almost all
positive, so a model could learn "JPEG artefacts = pneumothorax". This predicts every validation
DICOM of the model card twice: as stored, and after one more JPEG round trip of its 8-bit pixels
(what the extras went through), then prints how the triage score moves.

Usage: .venv/bin/python scripts/check_format_shortcut.py [--model M] [--images DIR] [--labels CSV]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from pneumoviewer import metrics
from pneumoviewer.io.images import load_radiograph
from pneumoviewer.model.inference import Predictor
from pneumoviewer.paths import default_model_path
from pneumoviewer.training.data import load_labelled_images

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "siim"


def jpeg_round_trip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Display pixels in [0, 1] -> 8-bit JPEG at `quality` -> back to [0, 1]."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_path())
    parser.add_argument("--images", type=Path, default=_SHARED)
    parser.add_argument("--labels", type=Path, default=_SHARED / "train-rle.csv")
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()

    predictor = Predictor(args.model)
    labelled = {image.image_id: image for image in load_labelled_images(args.labels, args.images, source="primary")}
    validation = [labelled[image_id] for image_id in predictor.card.training["split"]["validation_ids"]]

    stored, recompressed = [], []
    for image in tqdm(validation, desc="predicting twice", unit="img"):
        pixels = load_radiograph(image.path).pixels
        stored.append(predictor.predict(pixels))
        recompressed.append(predictor.predict(jpeg_round_trip(pixels, args.quality)))
    stored_scores = np.array([prediction.score for prediction in stored])
    recompressed_scores = np.array([prediction.score for prediction in recompressed])
    stored_calls = np.array([prediction.positive for prediction in stored])
    recompressed_calls = np.array([prediction.positive for prediction in recompressed])
    actual = np.array([image.positive for image in validation])
    change = recompressed_scores - stored_scores
    negatives = ~actual

    print(f"{len(actual)} validation DICOMs ({int(actual.sum())} positive), JPEG quality {args.quality}")
    print(f"score change after one more JPEG pass: mean {change.mean():+.4f}, "
          f"median {np.median(change):+.4f}, largest rise {change.max():+.4f}")
    print(f"ROC AUC as stored {metrics.roc_auc(stored_scores, actual):.4f}, "
          f"recompressed {metrics.roc_auc(recompressed_scores, actual):.4f}")
    print(f"negatives called positive: as stored {int(stored_calls[negatives].sum())}, "
          f"recompressed {int(recompressed_calls[negatives].sum())} (of {int(negatives.sum())})")


if __name__ == "__main__":
    main()
