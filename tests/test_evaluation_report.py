"""`pneumoviewer evaluate … --report DIR`: one self-contained HTML page of the evaluation, drawn."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import test_cli_operating_points  # tests/test_cli_operating_points.py: its labelled folder and calibrated model

from pneumoviewer.cli import main
from pneumoviewer.io.annotations import read_annotation_rows

pytestmark = pytest.mark.usefixtures("private_onnx_cache")
labelled_folder = test_cli_operating_points.labelled_folder  # fixtures
calibrated_model = test_cli_operating_points.calibrated_model


def _evaluate(labels: Path, images: Path, model: Path, out: Path, capsys) -> tuple[int, str, str]:
    status = main(["evaluate", "--labels", str(labels), "--images", str(images), "--model", str(model),
                   "--report", str(out)])
    printed = capsys.readouterr().out
    page = out / "evaluation-report.html"
    return status, printed, page.read_text(encoding="utf-8") if page.is_file() else ""


def test_the_page_holds_the_printed_auc_and_every_plot(random_checkpoint: Path, labelled_folder: Path,
                                                        siim_labels_csv: Path, tmp_path: Path, capsys) -> None:
    status, printed, page = _evaluate(siim_labels_csv, labelled_folder, random_checkpoint, tmp_path / "r", capsys)
    assert status == 0
    auc = re.search(r"ROC AUC of the score (\d\.\d{3})", printed).group(1)
    assert f"ROC AUC {auc}" in page and "95 % bootstrap interval" in page
    assert page.count("<svg") == 4  # ROC, the challenge point's confusion matrix, reliability, Dice
    assert "Only the challenge point: this model's card has no triage operating point." in page
    assert "the plot shows the raw triage score, which is not a probability" in page
    assert page.count("<img alt='radiograph' src='data:image/png;base64,") == 6  # 3 misses + 3 false alarms
    links = re.findall(r"(?:src|href)=[\"']([^\"']+)", page)
    assert links and all(link.startswith(("data:", "#")) for link in links)  # self-contained: nothing fetched
    assert "research tool, not a medical device" in page


def test_a_calibrated_card_gets_both_points_and_its_probability_plot(calibrated_model: Path, labelled_folder: Path,
                                                                      siim_labels_csv: Path, tmp_path: Path,
                                                                      capsys) -> None:
    status, _, page = _evaluate(siim_labels_csv, labelled_folder, calibrated_model, tmp_path / "r", capsys)
    assert status == 0
    assert "triage point (threshold" in page and "challenge point (threshold" in page
    assert page.count("<svg") == 5
    assert "Reliability of the calibrated probability" in page
    assert "<td>triage</td>" in page and "0.900 / 0.500" in page  # the card's out-of-fold figures beside ours


def test_without_positives_the_missing_plots_are_explained(random_checkpoint: Path, labelled_folder: Path,
                                                            siim_labels_csv: Path, tmp_path: Path, capsys) -> None:
    negatives = tmp_path / "negatives.csv"
    rows = [(image_id, encoded) for image_id, encoded in read_annotation_rows(siim_labels_csv) if encoded == "-1"]
    negatives.write_text("ImageId, EncodedPixels\n" + "".join(f"{i},{e}\n" for i, e in rows))
    status, _, page = _evaluate(negatives, labelled_folder, random_checkpoint, tmp_path / "r", capsys)
    assert status == 0
    assert "No ROC curve: it needs images with and without pneumothorax, and this set has no positive image." in page
    assert "No image with pneumothorax in this set: there is no Dice distribution to show." in page
    assert "None: this set has no positive image." in page


def test_a_single_image_still_gets_its_page(random_checkpoint: Path, labelled_folder: Path, siim_labels_csv: Path,
                                            tmp_path: Path, capsys) -> None:
    single = tmp_path / "single"
    single.mkdir()
    shutil.copy(sorted(labelled_folder.glob("*.dcm"))[0], single)
    status, _, page = _evaluate(siim_labels_csv, single, random_checkpoint, tmp_path / "r", capsys)
    assert status == 0 and "Images evaluated</td><td>1<" in page and "No ROC curve" in page


def test_when_nothing_can_be_evaluated_the_page_says_why(random_checkpoint: Path, siim_labels_csv: Path,
                                                         tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"truncated")
    status, _, page = _evaluate(siim_labels_csv, broken, random_checkpoint, tmp_path / "r", capsys)
    assert status == 1
    assert "No image could be evaluated, so there are no curves: no labelled images under" in page
    assert "broken.dcm" in page


@pytest.mark.skipif(shutil.which("chromium-headless-shell") is None and shutil.which("chromium") is None,
                    reason="no headless Chromium")
def test_chromium_renders_the_page(random_checkpoint: Path, labelled_folder: Path, siim_labels_csv: Path,
                                   tmp_path: Path, capsys) -> None:
    from PIL import Image

    _evaluate(siim_labels_csv, labelled_folder, random_checkpoint, tmp_path / "r", capsys)
    browser = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    shot = tmp_path / "page.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1100,2400",
                    f"--screenshot={shot}", (tmp_path / "r" / "evaluation-report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    import numpy as np

    with Image.open(shot) as picture:
        grey = picture.convert("L")
        assert grey.size == (1100, 2400)
        assert np.unique(np.asarray(grey.resize((64, 128)))).size > 20  # plots and thumbnails, not a blank page
