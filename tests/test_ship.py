"""Shipping from a campaign: a tiny fake 2-fold campaign (64 px, two steps a fold) to a candidate model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from script_loader import load_script  # tests/script_loader.py

from pneumoviewer import metrics
from pneumoviewer.io.dicom import load_dicom
from pneumoviewer.model.inference import Predictor
from pneumoviewer.training import data
from pneumoviewer.training.pack import write_pack
from pneumoviewer.training.predictions import read_predictions
from pneumoviewer.training.train import TrainingOptions, train

pytestmark = pytest.mark.usefixtures("private_onnx_cache")


@pytest.fixture(scope="module")
def tiny_campaign(small_labels: Path, siim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A campaign root with runs tiny-f0 and tiny-f1: folds 0 and 1 of 2 over 8 SIIM DICOMs, at 64 px."""
    root = tmp_path_factory.mktemp("campaign")
    images = data.load_labelled_images(small_labels, siim_dir, "primary")
    pack = write_pack(root / "pack.npz", images, 64, root / "cache", codec="png", progress=False)
    for fold in (0, 1):
        train(TrainingOptions(labels=None, images=None, pack=pack, out=root / "runs" / f"tiny-f{fold}", epochs=1,
                              input_size=64, batch_size=2, steps_per_epoch=2, folds=2, fold=fold, threads=1,
                              progress=False, warmup_steps=1))
    return root


def test_ship_tunes_calibrates_compares_and_writes_a_usable_candidate(
    tiny_campaign: Path, siim_dir: Path, small_labels: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folds = [read_predictions(tiny_campaign / "runs" / f"tiny-f{fold}") for fold in (0, 1)]
    ids = [image_id for part in folds for image_id in part.image_ids]
    truth = np.concatenate([part.positive for part in folds])
    assert len(set(ids)) == 8 and truth.sum() == 4
    # A stand-in for v1's `evaluate --json` on the images it held out: six of the eight.
    generator = np.random.default_rng(0)
    baseline = tmp_path / "v1.json"
    baseline.write_text(json.dumps({"per_image": [
        {"image_id": image_id, "score": float(generator.uniform()), "truth_positive": bool(positive),
         "called_positive": False, "dice": 0.0 if positive else 1.0}
        for image_id, positive in zip(ids[:6], truth[:6], strict=True)]}))
    dicom = next((siim_dir / "dicom-images").rglob(f"{ids[0]}.dcm"))
    out = tmp_path / "candidate"
    status = load_script("campaign").main([
        "ship", "--root", str(tiny_campaign), "--runs", "tiny-f0", "tiny-f1", "--out", str(out),
        "--baseline", str(baseline), "--latency-images", str(dicom)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "On the 6 images v1 also held out" in printed and "Verdict:" in printed and "Latency (2 threads" in printed

    report = json.loads((out / "ship-report.json").read_text())
    oof = report["out_of_fold"]
    assert oof["images"] == 8 and oof["positives"] == 4
    assert oof["all_empty_score"] == 0.5
    low, high = oof["roc_auc_interval"]
    assert low <= oof["roc_auc"] <= high
    comparison = report["against_baseline"]
    assert comparison["images"] == 6
    assert comparison["baseline"]["challenge_score"] == pytest.approx(np.mean([0.0 if p else 1.0 for p in truth[:6]]))
    assert comparison["differences"]["challenge_score"]["difference"] == pytest.approx(
        comparison["candidate"]["challenge_score"] - comparison["baseline"]["challenge_score"])
    assert report["latency"]["total_s"] > 0 and report["latency"]["input_size"] == 64

    # The candidate is the shipped fold's network with the out-of-fold card: the app can load it.
    predictor = Predictor(out / "candidate.safetensors")
    assert predictor.calibration is not None and predictor.operating_points.measured
    assert predictor.settings.to_dict() == report["settings"]
    triage = report["tuning"]["triage_score"]  # the worklist ranks by whichever held-out score ranked better
    assert predictor.settings.triage_by_presence_head == (triage["chosen"] == "presence head")
    assert triage["roc_auc_presence_head" if predictor.settings.triage_by_presence_head else "roc_auc_gate"] == max(
        triage["roc_auc_presence_head"], triage["roc_auc_gate"]) == pytest.approx(oof["roc_auc"])
    card = json.loads((out / "candidate.json").read_text())
    assert card["training"]["campaign"]["runs"] == ["tiny-f0", "tiny-f1"]
    assert card["metrics"]["out_of_fold"]["images"] == 8
    # The headline figures are the pooled held-out ones, not the shipped fold's own (those are kept apart).
    assert card["metrics"]["images_evaluated"] == 8 and card["metrics"]["positive_images"] == 4
    assert card["metrics"]["shipped_fold"]["images_evaluated"] == 4
    assert card["metrics"]["roc_auc"] == pytest.approx(oof["roc_auc"]) and card["metrics"]["triage_score"] == triage
    prediction = predictor.predict(load_dicom(dicom).pixels)
    assert prediction.flagged == (prediction.score >= predictor.operating_points.triage.threshold)
    assert 0.0 <= prediction.pneumothorax_probability <= 1.0
    assert card["operating_points"]["triage"]["threshold"] == pytest.approx(
        report["calibration"]["card"]["triage"]["threshold"])
    assert len(card["operating_curve"]) >= 1 and card["operating_curve"][-1][1] == 1.0
    markdown = (out / "ship-report.md").read_text()
    assert markdown.startswith("Out-of-fold over 2 folds: 8 images, 4 positive")
    # The tuned figures are optimistic; the report also gives the cross-fitted score beside them.
    assert f"| challenge_score, cross-fitted (tuned on one half, scored on the other) | " \
           f"{report['tuning']['challenge_score_crossfit']:.4f} |" in markdown


def test_ship_refuses_runs_without_out_of_fold_predictions(tiny_campaign: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs" / "unfinished").mkdir(parents=True)
    status = load_script("campaign").main(["ship", "--root", str(tmp_path), "--runs", "unfinished",
                                      "--out", str(tmp_path / "out")])
    assert status == 1 and "no out-of-fold predictions (oof.npz) yet" in capsys.readouterr().err


def test_sensitivity_at_specificity_keeps_the_specificity() -> None:
    generator = np.random.default_rng(3)
    scores, truth = generator.uniform(size=500), generator.uniform(size=500) < 0.3
    sensitivity = metrics.sensitivity_at_specificity(scores, truth, 0.9)
    negatives = np.sort(scores[~truth])
    threshold = negatives[negatives.size - int(0.1 * negatives.size) - 1]
    assert metrics.sensitivity_specificity(scores > threshold, truth)[1] >= 0.9
    assert sensitivity == pytest.approx(float(np.mean(scores[truth] > threshold)))
