"""`pneumoviewer --self-test`: the whole pipeline on a demo study, offscreen, with a clear verdict."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pneumoviewer.cli import main
from pneumoviewer.io.annotations import read_annotation_masks
from pneumoviewer.paths import default_model_path, demo_dir
from pneumoviewer.self_test import SelfTestError, find_demo_image, run_self_test

REPO_ROOT = Path(__file__).resolve().parent.parent
STEPS = ("image", "model", "prediction", "grad-cam", "rle csv", "qt")


def test_demo_image_is_the_first_dicom(tmp_path: Path) -> None:
    assert find_demo_image() == sorted(demo_dir().glob("*.dcm"))[0]
    (tmp_path / "PROVENANCE.md").write_text("where the studies come from")
    (tmp_path / "b.png").write_bytes(b"")
    assert find_demo_image(tmp_path) == tmp_path / "b.png"  # no DICOM: the first image of any kind
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "z.dcm").write_bytes(b"")
    assert find_demo_image(tmp_path) == tmp_path / "sub" / "z.dcm"


def test_no_demo_study_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "PROVENANCE.md").write_text("the studies were removed")
    with pytest.raises(SelfTestError, match="no demo study found"):
        find_demo_image(tmp_path)
    with pytest.raises(SelfTestError, match="demo folder is missing"):
        find_demo_image(tmp_path / "absent")


def test_self_test_runs_every_step_and_writes_a_readable_csv(random_checkpoint: Path) -> None:
    out = io.StringIO()
    csv_path = run_self_test(model=random_checkpoint, keep=True, out=out)
    try:
        lines = out.getvalue().splitlines()
        assert lines[0].startswith("PneumoViewer ")
        assert [line.split()[0] for line in lines[1:-1]] == ["image", "model", "prediction", "grad-cam", "rle", "qt"]
        assert lines[-1].startswith("self-test passed in ")
        assert find_demo_image().name in lines[1]
        # The fixture's settings call every case positive, so the CSV holds real RLE, not just "-1".
        masks = read_annotation_masks(csv_path)
        assert len(masks) == 1 and next(iter(masks.values())).any()
        assert csv_path.read_text(encoding="utf-8").splitlines()[0].replace(" ", "") == "ImageId,EncodedPixels"
    finally:
        shutil.rmtree(csv_path.parent)


def test_temporary_folder_is_removed_unless_kept(random_checkpoint: Path, tmp_path: Path) -> None:
    csv_path = run_self_test(image=find_demo_image(), model=random_checkpoint, out=io.StringIO())
    assert not csv_path.parent.exists()


def test_missing_model_fails_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.safetensors"
    assert main(["self-test", "--model", str(missing)]) == 1
    captured = capsys.readouterr()
    assert f"pneumoviewer: {missing}: the model file is missing" in captured.err
    assert "self-test FAILED" in captured.err
    assert "  model      FAILED" in captured.out
    assert "  image      " in captured.out  # the steps before it ran and said so


def test_unreadable_image_fails_naming_the_file(
    random_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00" * 20)
    assert main(["self-test", "--image", str(broken), "--model", str(random_checkpoint)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"pneumoviewer: {broken}: ")


def test_self_test_flag_runs_headless_in_a_fresh_process(random_checkpoint: Path) -> None:
    """What packaging/build.sh runs on the bundle: exit 0, no display needed, summary on stdout."""
    environment = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    environment.pop("QT_QPA_PLATFORM", None)  # the self-test must choose offscreen by itself
    result = subprocess.run(
        [sys.executable, "-m", "pneumoviewer", "--self-test", "--model", str(random_checkpoint)],
        capture_output=True, text=True, timeout=300, env=environment, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test passed" in result.stdout
    for step in STEPS:
        assert f"  {step}" in result.stdout


@pytest.mark.skipif(not default_model_path().is_file(), reason="the bundled model has not been added yet")
def test_self_test_with_the_bundled_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--self-test"]) == 0
    output = capsys.readouterr().out
    assert default_model_path().name in output
    score = float(output.split("score ")[1].split(",")[0])
    assert 0.0 <= score <= 1.0
    assert np.isfinite(score)
