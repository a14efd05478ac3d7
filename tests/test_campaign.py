"""The campaign driver: protocol, lock, a tiny real campaign end to end (subprocess trainer), status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pneumoviewer.training import campaign
from pneumoviewer.training.predictions import read_predictions


def _write_protocol(path: Path, labels: Path, images: Path, epochs: int = 1) -> Path:
    path.write_text(f'''
[paths]
labels = "{labels}"
images = "{images}"

[defaults]
args = ["--labels", "{{labels}}", "--images", "{{images}}", "--threads", "1", "--input-size", "64",
        "--batch-size", "2", "--steps-per-epoch", "2", "--checkpoint-minutes", "0"]

[[run]]
name = "tiny-f0"
measures = "a test"
args = ["--folds", "4", "--fold", "0", "--epochs", "{epochs}"]
''')
    return path


def test_protocol_fills_placeholders_and_the_command_resumes_niced(tmp_path: Path) -> None:
    protocol = _write_protocol(tmp_path / "p.toml", Path("/data/l.csv"), Path("/data/img"))
    (run,) = campaign.read_protocol(protocol)
    assert run.name == "tiny-f0" and run.args[:4] == ["--labels", "/data/l.csv", "--images", "/data/img"]
    assert run.value("--epochs", 8) == 1 and run.value("--learning-rate", 7) == 7
    command = campaign.train_command(run, tmp_path / "root", python="python")
    assert command[:6] == ["nice", "-n", "19", "python", "-m", "pneumoviewer"] and command[-1] == "--resume"
    assert command[command.index("--out") + 1] == str(tmp_path / "root" / "runs" / "tiny-f0")
    assert command[command.index("--cache-dir") + 1] == str(tmp_path / "root" / "cache")


def test_the_shipped_protocol_reads(tmp_path: Path) -> None:
    runs = campaign.read_protocol(campaign.DEFAULT_PROTOCOL)
    assert runs[0].name == "r384e-k5-f0" and runs[0].value("--input-size", 0) == 384
    assert [run.value("--fold", -1) for run in campaign.folds_of(runs, runs[0])] == [0, 1, 2, 3, 4]
    rendering = next(run for run in runs if "--rendering-augmentation" in run.args)  # a recipe step on fold 0
    assert [run.name for run in campaign.folds_of(runs, rendering)] == [rendering.name]
    for run in runs:
        assert run.args[run.args.index("--encoder-lr-scale") + 1] == "0.1"  # docs/model.md, "Campaign log"
        assert Path(run.args[run.args.index("--labels") + 1]).is_absolute()  # ../shared, resolved from the repo


def test_one_campaign_at_a_time_and_stale_locks_are_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / campaign.LOCK_FILE).write_text("pid 999999 since yesterday\n")  # its holder is gone
    assert campaign.lock_holder(tmp_path) is None
    lock = campaign.acquire_lock(tmp_path)
    assert "stale lock (pid 999999" in capsys.readouterr().out
    assert (campaign.lock_holder(tmp_path) or "").startswith(f"pid {os.getpid()} since ")
    with pytest.raises(campaign.CampaignBusy, match=f"already running.*pid {os.getpid()}"):
        campaign.acquire_lock(tmp_path)
    with pytest.raises(campaign.CampaignBusy):
        campaign.start_in_background(tmp_path / "p.toml", tmp_path)
    lock.close()
    assert campaign.lock_holder(tmp_path) is None


def test_a_tiny_campaign_runs_logs_and_is_not_rerun(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    protocol = _write_protocol(tmp_path / "p.toml", small_labels, siim_dir)
    assert campaign.run_campaign(protocol, root) == 0
    out = root / "runs" / "tiny-f0"
    assert (out / "model.safetensors").is_file() and (out / "oof.npz").is_file() and (out / "done.json").is_file()
    events = [json.loads(line) for line in (root / campaign.LOG_FILE).read_text().splitlines()]
    kinds = [event["event"] for event in events]
    assert kinds == ["campaign-started", "run-started", "started", "epoch", "finished", "run-done", "campaign-finished"]
    assert events[3]["run"] == "tiny-f0" and "challenge_score" in events[3]
    assert "scripts/campaign.py start" in events[0]["resume"]  # the log and the root say how to resume
    assert events[0]["resume"] in (root / campaign.RESUME_FILE).read_text()
    report = campaign.status(protocol, root)
    assert report["running"] is None and report["runs"][0]["state"] == "done"

    assert campaign.run_campaign(protocol, root) == 0  # done: nothing trains again
    kinds = [json.loads(line)["event"] for line in (root / campaign.LOG_FILE).read_text().splitlines()]
    assert kinds.count("run-started") == 1

    _write_protocol(protocol, small_labels, siim_dir, epochs=2)  # extended: resumes from its state
    assert campaign.run_campaign(protocol, root) == 0
    events = [json.loads(line) for line in (root / campaign.LOG_FILE).read_text().splitlines()]
    assert [e["event"] for e in events].count("run-started") == 2
    assert [e for e in events if e["event"] == "resumed"][0]["epoch"] == 1
    assert campaign.status(protocol, root)["runs"][0]["state"] == "done"


def test_a_parked_run_goes_on_in_a_new_root(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    """What a new machine sees: the root is gone, only the committed parking folder came with the checkout."""
    protocol = _write_protocol(tmp_path / "p.toml", small_labels, siim_dir)
    first, parking = tmp_path / "first", tmp_path / "parking"
    assert campaign.run_campaign(protocol, first, parking=parking) == 0
    _write_protocol(protocol, small_labels, siim_dir, epochs=2)  # one epoch of two done: a run under way
    parked = campaign.park(protocol, first, parking)
    assert sorted(path.name for path in parked) == ["last-state.pt", "progress.json"]
    state = "tiny-f0/last-state.pt"  # parked with its optimizer moments in bfloat16
    assert (parking / state).stat().st_size < 0.8 * (first / "runs" / state).stat().st_size

    second = tmp_path / "second"
    assert campaign.run_campaign(protocol, second, parking=parking) == 0
    events = [json.loads(line) for line in (second / campaign.LOG_FILE).read_text().splitlines()]
    assert [e["event"] for e in events][:3] == ["campaign-started", "run-restored", "run-started"]
    assert [e for e in events if e["event"] == "resumed"][0]["epoch"] == 1  # continued, not started again

    parked = campaign.park(protocol, second, parking)  # finished: its network and record, no state
    assert sorted(path.name for path in parked) == ["done.json", "model.json", "model.safetensors"]
    assert sorted(path.name for path in (parking / "tiny-f0").iterdir()) == ["done.json", "model.json",
                                                                            "model.safetensors"]
    third = tmp_path / "third"
    assert campaign.run_campaign(protocol, third, parking=parking) == 0
    kinds = [json.loads(line)["event"] for line in (third / campaign.LOG_FILE).read_text().splitlines()]
    assert "run-started" not in kinds and campaign.status(protocol, third)["runs"][0]["state"] == "done"
    assert "held-out-rebuilt" in kinds  # from the parked half-precision network, as the ship step needs them
    assert (third / "runs" / "tiny-f0" / "model.safetensors").read_bytes() == (
        second / "runs" / "tiny-f0" / "model.safetensors").read_bytes()
    rebuilt, lost = (read_predictions(root / "runs" / "tiny-f0") for root in (third, second))
    assert rebuilt.image_ids == lost.image_ids and np.array_equal(rebuilt.masks, lost.masks)
    assert np.abs(rebuilt.maps.astype(np.float32) - lost.maps.astype(np.float32)).max() < 0.02
    assert np.allclose(rebuilt.presence_tta, lost.presence_tta, atol=0.02)


def test_status_reports_progress_and_eta(tmp_path: Path) -> None:
    protocol = _write_protocol(tmp_path / "p.toml", Path("/l.csv"), Path("/i"), epochs=3)
    out = tmp_path / "runs" / "tiny-f0"
    out.mkdir(parents=True)
    (out / "progress.json").write_text(json.dumps({
        "phase": "training", "epoch": 1, "step": 1, "epochs": 3, "steps_per_epoch": 2, "seconds_per_step": 1800.0,
        "recent_loss": 0.5, "last_epoch": None, "updated": time.time(), "checkpoint": {"epoch": 1, "step": 1,
                                                                                       "time": time.time() - 600},
    }))
    report = campaign.status(protocol, tmp_path)
    (entry,) = report["runs"]
    assert entry["state"] == "stopped (training)" and entry["eta_hours"] == 1.5  # 3 steps left x 0.5 h
    text = campaign.format_status(report)
    assert "epoch 2/3 step 1/2" in text and "checkpoint 10 min ago" in text and "ETA 1.5 h" in text


def test_gpu_fold_script_trains_two_folds_from_a_pack(small_labels: Path, siim_dir: Path, tmp_path: Path) -> None:
    """The GPU script, here on the CPU: a 64 px pack, folds 0 and 1 of 4, two steps each."""
    from pneumoviewer.training import data
    from pneumoviewer.training.pack import write_pack

    images = data.load_labelled_images(small_labels, siim_dir, "primary")
    pack = write_pack(tmp_path / "pack.npz", images, 64, tmp_path / "cache", codec="png", progress=False)
    script = campaign.REPO_ROOT / "scripts" / "gpu_train_folds.sh"
    environment = {**os.environ, "FOLDS": "4", "FOLD_LIST": "0 1", "PYTHON": sys.executable,
                   "BUNDLE": str(tmp_path / "bundle")}
    result = subprocess.run(
        [str(script), str(pack), str(tmp_path / "gpu"), "--epochs", "1", "--steps-per-epoch", "2",
         "--batch-size", "2", "--threads", "1"],
        env=environment, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "device: cpu" in result.stdout
    for fold in (0, 1):
        card = json.loads((tmp_path / "gpu" / f"fold{fold}" / "model.json").read_text())
        assert card["training"]["split"]["fold"] == fold and card["training"]["split"]["folds"] == 4
        assert (tmp_path / "gpu" / f"fold{fold}" / "oof.npz").is_file()
    bundled = subprocess.run(f"cat {tmp_path}/bundle/folds.tar.part-* | tar -tf -", shell=True,
                             capture_output=True, text=True, check=True).stdout.split()
    assert "fold1/model.safetensors" in bundled and "campaign.jsonl" in bundled
