"""Which layer gives useful Grad-CAM maps? Localisation and faithfulness per layer on labelled images.

    nice -n 10 .venv/bin/python benchmarks/cam_layers.py --model M [--ids CARD_OR_LIST] [--limit 40]

For labelled pneumothorax images (the model's validation split when --ids names its card), and for
each candidate layer:
- heat in lesion: share of the heat mass inside the true mask (dilated by 3 % of the image side);
- pointing game: how often the hottest pixel falls in that region;
- deletion drop: how much the explained logit sum falls when the hottest 10 % of the image is
  replaced by the image mean, relative to replacing a random 10 % (faithfulness: > 1 means the map
  points at what the output actually uses).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from skimage.morphology import isotropic_dilation

from pneumoviewer.io.annotations import read_annotation_masks
from pneumoviewer.io.images import load_radiograph
from pneumoviewer.model.batch_evaluate import read_id_list
from pneumoviewer.model.cam import grad_cam
from pneumoviewer.model.inference import Predictor

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LAYERS = ("unet.encoder", "unet.decoder.blocks.0", "unet.decoder.blocks.1", "unet.decoder.blocks.2")


def explained_logit_sum(predictor: Predictor, pixels: np.ndarray, region: np.ndarray) -> float:
    with torch.inference_mode():
        mask_logits, _ = predictor.network(predictor.preprocess(pixels))
    logits = torch.nn.functional.interpolate(mask_logits, size=pixels.shape, mode="bilinear")[0, 0].numpy()
    return float(logits[region].sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--ids", type=Path, help="restrict to these ImageIds (list, or a model card's split)")
    parser.add_argument("--limit", type=int, default=40, help="at most this many positive images")
    args = parser.parse_args()
    predictor = Predictor(args.model, runtime="torch")
    truth = {k: v for k, v in read_annotation_masks(DATA / "siim" / "train-rle.csv").items() if v.any()}
    wanted = read_id_list(args.ids) if args.ids else set(truth)
    files = {p.stem: p for p in (DATA / "siim" / "dicom-images").rglob("*.dcm") if p.stem in wanted and p.stem in truth}
    chosen = sorted(files)[: args.limit]
    rng = np.random.default_rng(0)
    figures: dict[str, dict[str, list[float]]] = {layer: {"mass": [], "hit": [], "drop": []} for layer in LAYERS}
    for image_id in chosen:
        pixels = load_radiograph(files[image_id]).pixels
        lesion = truth[image_id]
        near_lesion = isotropic_dilation(lesion, round(0.03 * max(lesion.shape)))
        prediction = predictor.predict(pixels)
        region = prediction.mask if prediction.mask.any() else np.ones(pixels.shape, bool)
        baseline = explained_logit_sum(predictor, pixels, region)
        for layer in LAYERS:
            heat = grad_cam(predictor, pixels, target_mask=prediction.mask, layer=layer)
            figures[layer]["mass"].append(float(heat[near_lesion].sum() / max(heat.sum(), 1e-9)))
            figures[layer]["hit"].append(float(near_lesion.flat[int(np.argmax(heat))]))
            hottest = heat >= np.quantile(heat, 0.9)
            random_tenth = rng.random(pixels.shape) < 0.1
            drops = []
            for removed in (hottest, random_tenth):
                edited = pixels.copy()
                edited[removed] = pixels.mean()
                drops.append(baseline - explained_logit_sum(predictor, edited, region))
            figures[layer]["drop"].append(drops[0] / drops[1] if abs(drops[1]) > 1e-6 else float("nan"))
    print(f"{len(chosen)} positive image(s); model {args.model}")
    print(f"{'layer':<24}{'heat in lesion':>16}{'pointing game':>15}{'deletion drop vs random':>26}")
    for layer, values in figures.items():
        drops = [d for d in values["drop"] if np.isfinite(d)]
        print(f"{layer:<24}{statistics.mean(values['mass']):>16.3f}{statistics.mean(values['hit']):>15.3f}"
              f"{statistics.median(drops) if drops else float('nan'):>26.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
