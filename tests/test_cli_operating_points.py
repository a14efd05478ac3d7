"""`predict` and `evaluate` report both calls (challenge and triage) and the calibrated probability."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pneumoviewer.cli import main
from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.dicom import load_dicom
from pneumoviewer.model.calibration import fit_calibration
from pneumoviewer.model.inference import Predictor
from pneumoviewer.model.operating_points import flagged

pytestmark = pytest.mark.usefixtures("private_onnx_cache")


@pytest.fixture(scope="module")
def labelled_folder(siim_dir: Path, siim_labels_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three positive and three negative SIIM DICOMs."""
    rows = read_annotation_rows(siim_labels_csv)
    chosen = (sorted({i for i, e in rows if e != "-1"})[:3] + sorted({i for i, e in rows if e == "-1"})[:3])
    found = {path.stem: path for path in (siim_dir / "dicom-images").rglob("*.dcm")}
    folder = tmp_path_factory.mktemp("labelled")
    for image_id in chosen:
        shutil.copy(found[image_id], folder / f"{image_id}.dcm")
    return folder


@pytest.fixture(scope="module")
def calibrated_model(random_checkpoint: Path, labelled_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random model with a calibration and a triage point between its scores on the folder."""
    predictor = Predictor(random_checkpoint)
    scores = sorted(predictor.predict(load_dicom(path).pixels).score for path in sorted(labelled_folder.glob("*.dcm")))
    folder = tmp_path_factory.mktemp("calibrated")
    weights = folder / "calibrated.safetensors"
    shutil.copy(random_checkpoint, weights)
    card = json.loads(random_checkpoint.with_suffix(".json").read_text())
    triage = (scores[2] + scores[3]) / 2  # three of six flagged
    card["calibration"] = fit_calibration([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], [0, 0, 1, 0, 1, 1]).to_card()
    card["operating_points"] = {"triage": {"threshold": triage, "sensitivity": 0.9, "specificity": 0.5},
                                "challenge": {"threshold": 0.0, "sensitivity": 1.0, "specificity": 0.0}}
    card["operating_curve"] = [[triage, 0.9, 0.5], [scores[0], 1.0, 0.0]]
    weights.with_suffix(".json").write_text(json.dumps(card))
    return weights


def test_predict_writes_both_calls_and_the_probability(
    calibrated_model: Path, labelled_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "preds.csv"
    assert main(["predict", str(labelled_folder), "--out", str(out), "--model", str(calibrated_model)]) == 0
    summary = capsys.readouterr().out
    assert "6 positive, 0 negative (challenge call, masks); 3 flagged for triage" in summary
    assert "sensitivity 0.90, specificity 0.50 out-of-fold" in summary
    rows = list(csv.DictReader((tmp_path / "preds-scores.csv").read_text().splitlines()))
    predictor = Predictor(calibrated_model)
    for row in rows:
        prediction = predictor.predict(load_dicom(labelled_folder / f"{row['ImageId']}.dcm").pixels)
        assert row["call"] == "positive" and prediction.positive  # the challenge call: threshold 0
        assert row["triage"] == ("flagged" if prediction.flagged else "not flagged")
        assert prediction.flagged == flagged(prediction.score, predictor.operating_points.triage.threshold)
        assert float(row["probability"]) == pytest.approx(prediction.pneumothorax_probability, abs=1e-3)
        assert prediction.pneumothorax_probability == pytest.approx(predictor.calibration.probability(prediction.score))
    assert [row["triage"] for row in rows] == ["flagged"] * 3 + ["not flagged"] * 3  # highest scores first


def test_uncalibrated_model_leaves_the_probability_empty_and_flags_at_the_challenge_threshold(
    random_checkpoint: Path, labelled_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preds.csv"
    assert main(["predict", str(labelled_folder), "--out", str(out), "--model", str(random_checkpoint)]) == 0
    rows = list(csv.DictReader((tmp_path / "preds-scores.csv").read_text().splitlines()))
    assert all(row["probability"] == "" and row["triage"] == "flagged" for row in rows)  # threshold 0
    prediction = Predictor(random_checkpoint).predict(np.zeros((64, 64), np.float32))
    assert prediction.pneumothorax_probability == prediction.score


def test_evaluate_prints_the_operating_point_table_with_intervals(
    calibrated_model: Path, labelled_folder: Path, siim_labels_csv: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "evaluation.json"
    assert main(["evaluate", "--labels", str(siim_labels_csv), "--images", str(labelled_folder),
                 "--model", str(calibrated_model), "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "triage flag (worklist red)" in printed and "challenge call (masks, CSV)" in printed
    assert "calibrated probability: Brier score" in printed
    figures = json.loads(report.read_text())
    challenge, triage = figures["operating_points"]["challenge"], figures["operating_points"]["triage"]
    assert challenge["sensitivity"] == 1.0 and challenge["specificity"] == 0.0 and challenge["called"] == 6
    assert triage["called"] == 3 and triage["card_sensitivity"] == 0.9
    low, high = triage["sensitivity_interval"]
    assert low <= triage["sensitivity"] <= high
    assert sum(entry["count"] for entry in figures["calibration"]["reliability"]) == 6
    assert {row["flagged"] for row in figures["per_image"]} == {True, False}
