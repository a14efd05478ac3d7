"""Learning from corrections on a simulated site: the drop, the label-free step, the fine-tune, the gate.

    nice -n 10 .venv/bin/python benchmarks/bench_finetune.py [--quick] [--minutes 4] [--twin FOLDER] [--json OUT]

The "site" is the site twin (`training.site_render`, the DX profile) of the bundled model's 269
validation images. Fine-tuning runs through `training.finetune.finetune`, the code path of
`pneumoviewer finetune` and of the app, with `--holdout-fraction 0.45` (148 cases trained on,
121 held out). On the held-out slice it reports the bundled model on the original and on the
re-rendered images (the drop), the label-free step (decoder BatchNorm re-estimated on the site's
training images), and the candidate, with the gate's decision; then the minutes of fine-tuning per
100 reviewed cases (the whole run: reading, training, tuning, gate). Last, a deliberately harmful
recipe (10x the rate, the whole network, no statistics step, no rehearsal) on the ORIGINAL images,
to show the gate refusing a model that got worse. --quick: 60 cases, a short budget, no forgetting.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import DATA, Figure, add_runner_arguments, report  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runner_arguments(parser)
    parser.add_argument("--minutes", type=float, default=4.0, help="fine-tuning time budget (default 4)")
    parser.add_argument("--twin", type=Path, help="an existing site twin of the validation images (default: render)")
    parser.add_argument("--work", type=Path, help="where runs and caches go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write every figure measured here as JSON")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="the recipe's rate (default 3e-4)")
    parser.add_argument("--adapt-batchnorm", action="store_true", help="the recipe with the statistics step first")
    parser.add_argument("--no-harmful", action="store_true", help="skip the harmful recipe on the original images")
    parser.add_argument("--fit-fraction", type=float, default=0.0,
                        help="share of the training cases held apart to fit the candidate's thresholds (default 0)")
    parser.add_argument("--site-sampling", choices=("balanced", "prevalence"), default="balanced")
    parser.add_argument("--no-forgetting", action="store_true", help="skip the forgetting check")
    parser.add_argument("--candidate-only", action="store_true",
                        help="skip the bundled model on the original images and the label-free step")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as temporary:
        work = args.work or Path(temporary)
        details = measure(work, args)
    if args.json:
        args.json.write_text(json.dumps(details, indent=2) + "\n")
    print(json.dumps(details, indent=2))
    per_100 = details["site"]["minutes"] / details["site"]["reviewed_cases"] * 100
    held_out = details["held_out"]
    figures = [
        Figure("fine-tuning minutes per 100 reviewed cases", round(per_100, 2), "min", None,
               f"budget {details['site']['budget_minutes']} min, {details['site']['reviewed_cases']} cases"),
        Figure("held-out AUC: bundled on the site", held_out["bundled_site"]["roc_auc"], "", None,
               f"original images {(held_out['bundled_original'] or {}).get('roc_auc', 'not measured')}"),
        *([] if held_out["batchnorm_only"] is None else
          [Figure("  label-free statistics step", held_out["batchnorm_only"]["roc_auc"], "", None, "")]),
        Figure("  fine-tuned candidate", held_out["candidate"]["roc_auc"], "", None,
               f"gate: {details['site']['decision']}"),
    ]
    return report(figures, args)


def measure(work: Path, args: argparse.Namespace) -> dict:
    import numpy as np

    from pneumoviewer.model.card import load_card
    from pneumoviewer.model.checkpoint import load_checkpoint
    from pneumoviewer.model.pipeline import InputSpec
    from pneumoviewer.paths import default_model_path
    from pneumoviewer.review.training_set import ReviewedCases
    from pneumoviewer.training import data, gate
    from pneumoviewer.training import finetune as ft

    card = load_card(default_model_path())
    developers = ft.developer_data(card)
    if developers is None:
        raise SystemExit("the developers' SIIM data is not beside the checkout (../shared/data)")
    validation = developers.validation[:60] if args.quick else developers.validation
    twin = args.twin or render_twin(validation, work / "twin")
    site_cases = _cases(validation, twin, work)
    original_cases = _cases(validation, None, work)
    cache = work / "cache"
    budget = min(args.minutes, 0.5) if args.quick else args.minutes

    started = time.monotonic()
    site = ft.finetune(site_cases, ft.FinetuneOptions(out=work / "site", minutes=budget, holdout_fraction=0.45,
                                                      cache_dir=cache,
                                                      forgetting=not (args.quick or args.no_forgetting),
                                                      learning_rate=args.learning_rate,
                                                      adapt_batchnorm=args.adapt_batchnorm,
                                                      fit_fraction=args.fit_fraction,
                                                      site_sampling=args.site_sampling))
    site_minutes = (time.monotonic() - started) / 60

    # The bundled model on the same held-out slice: original images, and after the label-free step.
    model, model_card = load_checkpoint(default_model_path())
    spec = InputSpec.from_card(model_card)
    by_id = {image.image_id: image for image in validation}
    held_out = [by_id[i] for i in site.held_out]
    trained = [by_id[i] for i in site.trained_on]

    def examples(images: list[data.LabelledImage], folder: Path | None) -> tuple[np.ndarray, np.ndarray]:
        files = data.find_image_files(folder) if folder is not None else {}
        moved = [data.LabelledImage(i.image_id, files.get(i.image_id, i.path), i.source, i.rle_rows) for i in images]
        return data.load_examples(moved, spec.size, cache, progress=False)

    device = ft.select_device()
    original = batchnorm_only = None
    if not args.candidate_only:
        original = gate.run_on_examples(model, model_card, *examples(held_out, None), device)[0]
        ft.adapt_batchnorm(model, examples(trained, twin)[0], spec, device)
        batchnorm_only = gate.run_on_examples(model, model_card, *examples(held_out, twin), device)[0]

    details = {
        "site": {"reviewed_cases": len(site_cases.cases), "trained_on": len(site.trained_on),
                 "held_out": len(site.held_out), "budget_minutes": budget, "minutes": round(site_minutes, 2),
                 "steps": json.loads(site.model.with_suffix(".json").read_text())["training"]["steps"],
                 "decision": site.report.decision.value, "gate": site.report.to_dict(),
                 "table": gate.gate_table(site.report)},
        "held_out": {"bundled_original": original and original.to_dict(),
                     "bundled_site": site.report.current.to_dict(),
                     "batchnorm_only": batchnorm_only and batchnorm_only.to_dict(),
                     "candidate": site.report.candidate.to_dict()},
    }
    if not args.no_harmful:
        harmful = ft.finetune(ReviewedCases(original_cases.cases), ft.FinetuneOptions(
            out=work / "harmful", minutes=budget / 2, holdout_fraction=0.45, cache_dir=cache, learning_rate=3e-3,
            encoder_lr_scale=1.0, adapt_batchnorm=False, rehearsal_images=0, forgetting=False))
        details["harmful_on_original"] = {"decision": harmful.report.decision.value, "gate": harmful.report.to_dict(),
                                          "table": gate.gate_table(harmful.report)}
    return details


def render_twin(images: list, folder: Path) -> Path:
    from pneumoviewer.training.site_render import DEFAULT_PROFILE, write_twin_dicom

    for image in images:
        write_twin_dicom(image.path, folder / image.path.name, DEFAULT_PROFILE)
    return folder


def _cases(images: list, folder: Path | None, work: Path):
    """The images' labels as a challenge CSV, read back by `cases_from_csv` from `folder` (default: the originals)."""
    from pneumoviewer.training.finetune import cases_from_csv

    labels = work / ("site.csv" if folder is not None else "original.csv")
    labels.parent.mkdir(parents=True, exist_ok=True)
    labels.write_text("ImageId,EncodedPixels\n" + "".join(f"{i.image_id},{row}\n" for i in images
                                                           for row in i.rle_rows))
    if folder is not None:
        return cases_from_csv(labels, folder)
    return cases_from_csv(labels, DATA / "siim")


if __name__ == "__main__":
    sys.exit(main())
