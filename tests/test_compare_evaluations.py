"""scripts/compare_evaluations.py: two `evaluate --json` files over the same films, paired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_loader import load_script  # tests/script_loader.py


def _evaluation(path: Path, scores: list[float], dice: list[float], truth: list[bool]) -> Path:
    rows = [{"image_id": f"1.2.{number}", "score": score, "dice": d, "truth_positive": positive}
            for number, (score, d, positive) in enumerate(zip(scores, dice, truth, strict=True))]
    path.write_text(json.dumps({"per_image": rows}))
    return path


def test_the_paired_change_and_its_interval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = [True, True, False, False, False, False]
    baseline = _evaluation(tmp_path / "a.json", [0.6, 0.2, 0.5, 0.1, 0.3, 0.4], [0.5, 0, 1, 1, 0, 1], truth)
    candidate = _evaluation(tmp_path / "b.json", [0.9, 0.8, 0.5, 0.1, 0.3, 0.4], [0.8, 0.2, 1, 1, 1, 1], truth)
    assert load_script("compare_evaluations").main([str(baseline), str(candidate), "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "6 images (2 positive); all-empty challenge score 0.6667" in out
    challenge = next(line for line in out.splitlines() if line.startswith("challenge score"))
    assert challenge.split()[2:5] == ["0.5833", "0.8333", "+0.2500"]  # (0.5+0+1+1+0+1)/6 -> (0.8+0.2+4)/6
    auc = next(line for line in out.splitlines() if line.startswith("ROC AUC"))
    assert auc.split()[2:5] == ["0.6250", "1.0000", "+0.3750"]


def test_files_over_other_labels_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = _evaluation(tmp_path / "a.json", [0.6, 0.2], [1, 1], [True, False])
    candidate = _evaluation(tmp_path / "b.json", [0.6, 0.2], [1, 1], [False, False])
    assert load_script("compare_evaluations").main([str(baseline), str(candidate)]) == 1
    assert "disagree on which images are positive" in capsys.readouterr().err
