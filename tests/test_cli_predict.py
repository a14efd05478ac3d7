"""`pneumoviewer predict` and `evaluate` end to end on real SIIM DICOMs, with a small random model."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumoviewer import metrics
from pneumoviewer.cli import main
from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.dicom import load_dicom, read_header
from pneumoviewer.io.rle import RleConvention, decode
from pneumoviewer.model.inference import Predictor

pytestmark = pytest.mark.usefixtures("private_onnx_cache")  # never the user's own cache


@pytest.fixture(scope="module")
def labelled(siim_dir: Path, siim_labels_csv: Path) -> dict[str, Path]:
    """Two positive and two negative SIIM DICOMs, by ImageId."""
    rows = read_annotation_rows(siim_labels_csv)
    positives = sorted({image_id for image_id, encoded in rows if encoded != "-1"})[:2]
    negatives = sorted({image_id for image_id, encoded in rows if encoded == "-1"})[:2]
    found = {path.stem: path for path in (siim_dir / "dicom-images").rglob("*.dcm")}
    return {image_id: found[image_id] for image_id in positives + negatives}


@pytest.fixture()
def image_folder(tmp_path: Path, labelled: dict[str, Path], data_dir: Path) -> Path:
    """The four labelled files in a nested layout, one unlabelled DICOM and one broken .dcm."""
    folder = tmp_path / "images"
    for index, path in enumerate(labelled.values()):
        target = folder / f"study{index % 2}" / "series" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    shutil.copy(min((data_dir / "unlabelled").glob("*.dcm")), folder / "unlabelled.dcm")
    (folder / "broken.dcm").write_bytes(b"not a dicom at all")
    return folder


def _masks_from_csv(path: Path, convention: RleConvention) -> dict[str, np.ndarray]:
    masks: dict[str, np.ndarray] = {}
    for image_id, encoded in read_annotation_rows(path):
        mask = decode(encoded, (1024, 1024), convention)
        masks[image_id] = masks[image_id] | mask if image_id in masks else mask
    return masks


@pytest.mark.parametrize("convention", list(RleConvention))
def test_predict_writes_the_model_masks_scores_and_pictures(
    image_folder: Path, random_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    convention: RleConvention,
) -> None:
    out = tmp_path / "out" / "preds.csv"  # a folder that does not exist yet
    pictures = convention is RleConvention.RELATIVE  # the slow part; once is enough
    status = main(["predict", str(image_folder), "--out", str(out), "--model", str(random_checkpoint),
                   "--rle", convention.value]
                  + (["--cam-dir", str(tmp_path / "cam"), "--overlay-dir", str(tmp_path / "overlay")] if pictures else []))
    assert status == 0
    captured = capsys.readouterr()
    assert f"{image_folder / 'broken.dcm'}: " in captured.err  # the bad file is named, with its reason
    assert "Predicted 5 image(s)" in captured.out

    files = sorted(p for p in image_folder.rglob("*.dcm") if p.name != "broken.dcm")
    expected_ids = {read_header(path).sop_instance_uid: path for path in files}
    masks = _masks_from_csv(out, convention)
    assert set(masks) == set(expected_ids)
    predictor = Predictor.cached(random_checkpoint)
    for image_id, path in expected_ids.items():
        prediction = predictor.predict(load_dicom(path).pixels)
        np.testing.assert_array_equal(masks[image_id], prediction.mask)
        if not pictures:
            continue
        heat = Image.open(tmp_path / "cam" / f"{image_id}.png")
        overlay = Image.open(tmp_path / "overlay" / f"{image_id}.png")
        assert heat.size == overlay.size == (1024, 1024) and overlay.mode == "RGB"

    with open(out.with_name("preds-scores.csv"), newline="") as stream:
        table = list(csv.DictReader(stream))
    assert {row["ImageId"] for row in table} == set(expected_ids)
    scores = [float(row["score"]) for row in table]
    assert scores == sorted(scores, reverse=True)  # triage order
    assert all(float(row["area_mm2"]) > 0 for row in table if row["call"] == "positive")


def test_predict_exit_status_is_non_zero_only_when_nothing_was_predicted(
    tmp_path: Path, random_checkpoint: Path, labelled: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"DICM" * 10)
    out = tmp_path / "preds.csv"
    assert main(["predict", str(broken), "--out", str(out), "--model", str(random_checkpoint)]) == 1
    assert not out.exists()
    assert str(broken) in capsys.readouterr().err
    one_good = next(iter(labelled.values()))
    assert main(["predict", str(broken), str(one_good), "--out", str(out), "--model", str(random_checkpoint)]) == 0
    assert len(_masks_from_csv(out, RleConvention.RELATIVE)) == 1


def test_plain_image_files_named_directly_are_predicted_under_their_stem(
    tmp_path: Path, random_checkpoint: Path, data_dir: Path
) -> None:
    jpeg = min((data_dir / "siim-extra" / "images").glob("*.jpg"))
    out = tmp_path / "preds.csv"
    assert main(["predict", str(jpeg), str(jpeg), "--out", str(out), "--model", str(random_checkpoint)]) == 0
    assert set(_masks_from_csv(out, RleConvention.RELATIVE)) == {jpeg.stem}  # named twice, predicted once
    scores = list(csv.DictReader((tmp_path / "preds-scores.csv").read_text().splitlines()))
    assert len(scores) == 1 and scores[0]["area_mm2"] == ""  # no PixelSpacing in a JPEG


def test_predict_reports_a_missing_model_and_bad_settings(
    tmp_path: Path, random_checkpoint: Path, labelled: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    image = str(next(iter(labelled.values())))
    out = str(tmp_path / "preds.csv")
    assert main(["predict", image, "--out", out, "--model", str(tmp_path / "absent.safetensors")]) == 1
    assert "absent.safetensors: model file not found" in capsys.readouterr().err
    assert main(["predict", image, "--out", out, "--model", str(random_checkpoint), "--setting", "mask_treshold=0.3"]) == 1
    assert "unknown inference setting" in capsys.readouterr().err
    assert main(["predict", image, "--out", out, "--model", str(random_checkpoint), "--setting", "nonsense"]) == 2


def test_evaluate_reports_score_baseline_confusion_and_auc(
    image_folder: Path, random_checkpoint: Path, siim_labels_csv: Path, labelled: dict[str, Path],
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "evaluation.json"
    status = main(["evaluate", "--labels", str(siim_labels_csv), "--images", str(image_folder),
                   "--model", str(random_checkpoint), "--json", str(report)])
    assert status == 0
    captured = capsys.readouterr()
    assert "1 image(s)" in captured.err and "no label row" in captured.err  # the unlabelled DICOM
    assert "all-empty" in captured.out and "challenge score" in captured.out

    figures = json.loads(report.read_text())
    assert figures["images_evaluated"] == 4 and figures["positive_images"] == 2
    assert figures["all_empty_score"] == pytest.approx(0.5)
    truth = _masks_from_csv(siim_labels_csv, RleConvention.RELATIVE)
    predictor = Predictor.cached(random_checkpoint)
    dice = [metrics.dice(predictor.predict(load_dicom(path).pixels).mask, truth[image_id])
            for image_id, path in labelled.items()]
    assert figures["challenge_score"] == pytest.approx(np.mean(dice))
    assert sum(figures["confusion"].values()) == 4
    # The fixture model calls every image positive: all positives found, no negative cleared.
    assert figures["sensitivity"] == 1.0 and figures["specificity"] == 0.0
    assert 0.0 <= figures["roc_auc"] <= 1.0
    assert figures["latency"]["mean_s"] > 0
    assert {row["image_id"] for row in figures["per_image"]} == set(labelled)


def test_evaluate_can_be_restricted_to_listed_ids(
    image_folder: Path, random_checkpoint: Path, siim_labels_csv: Path, labelled: dict[str, Path],
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    chosen = sorted(labelled)[:2]
    id_list = tmp_path / "ids.txt"
    id_list.write_text("\n".join(chosen) + "\n")
    card = tmp_path / "card.json"  # a model card recording its validation split
    card.write_text(json.dumps({"training": {"split": {"validation_ids": chosen[:1]}}}))
    for ids, count in ((id_list, 2), (card, 1)):
        report = tmp_path / f"{ids.stem}.json"
        assert main(["evaluate", "--labels", str(siim_labels_csv), "--images", str(image_folder),
                     "--model", str(random_checkpoint), "--ids", str(ids), "--json", str(report)]) == 0
        figures = json.loads(report.read_text())
        assert figures["images_evaluated"] == count
        assert {row["image_id"] for row in figures["per_image"]} == set(chosen[:count])
    assert "restricted to 1 listed image(s)" in capsys.readouterr().err
