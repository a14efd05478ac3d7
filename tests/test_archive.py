"""`pneumoviewer predict --workers/--scheduler/--resume` on a real local Dask cluster (2 worker processes).

Real SIIM DICOMs with hostile files among them; the cluster's CSVs must be byte-identical to the
single-process run's, also when a worker is killed mid-run (its batch is redone elsewhere) and when
the client itself is killed and the run is finished with --resume: every image exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from pneumoviewer.cli import main
from pneumoviewer.commands.predict import _ScoreOrder

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def archive(siim_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 real DICOMs in a study/series layout, a copy of one under another name (same ImageId),
    a truncated and a fake .dcm, a text file and a hidden file."""
    folder = tmp_path_factory.mktemp("archive")
    sources = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:16]
    for index, source in enumerate(sources):
        target = folder / f"study{index % 3}" / f"series{index % 2}" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    shutil.copy(sources[0], folder / "study2" / "copy-of-first.dcm")
    (folder / "study1" / "truncated.dcm").write_bytes(sources[1].read_bytes()[:2000])
    (folder / "fake.dcm").write_bytes(b"not a dicom at all")
    (folder / "README.txt").write_text("exported by the PACS\n")
    (folder / ".hidden.dcm").write_bytes(b"ignored")
    return folder


@pytest.fixture(scope="module")
def cluster_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of worker processes and CLI subprocesses: a private ONNX cache, this checkout."""
    return {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache")),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])),
    }


@pytest.fixture(scope="module")
def reference(archive: Path, random_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory,
              cluster_env: dict[str, str]) -> tuple[bytes, bytes]:
    """The single-process run's masks and scores CSVs, byte for byte."""
    out = tmp_path_factory.mktemp("single") / "preds.csv"
    _run_cli([str(archive), "--out", str(out), "--model", str(random_checkpoint)], cluster_env).check_returncode()
    return out.read_bytes(), out.with_name("preds-scores.csv").read_bytes()


def _run_cli(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pneumoviewer", "predict", *arguments], env=env,
                          capture_output=True, text=True, timeout=600)


def _outputs(out: Path) -> tuple[bytes, bytes]:
    return out.read_bytes(), out.with_name(out.stem + "-scores.csv").read_bytes()


def _start_cli(arguments: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pneumoviewer", "predict", *arguments], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_batches(journal: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while len(list(journal.glob("batch-*.pickle"))) < count:
        assert process.poll() is None, f"the run ended before {count} batches: {process.communicate()}"
        assert time.monotonic() < deadline, "no batch finished within 5 minutes"
        time.sleep(0.2)


def test_the_cluster_writes_the_single_process_bytes_and_reports_each_bad_file_once(
    archive: Path, random_checkpoint: Path, reference: tuple[bytes, bytes], tmp_path: Path,
    cluster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in cluster_env.items():
        monkeypatch.setenv(name, value)  # the local cluster's workers inherit the environment
    out = tmp_path / "preds.csv"
    status = main(["predict", str(archive), "--out", str(out), "--model", str(random_checkpoint),
                   "--workers", "2", "--batch-size", "3"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert _outputs(out) == reference
    assert "Predicted 16 image(s)" in captured.out and "3 skipped" in captured.out
    for bad in ("truncated.dcm", "fake.dcm", "copy-of-first.dcm"):
        assert captured.err.count(bad) == 1, captured.err
    assert "README.txt" not in captured.err and ".hidden" not in captured.err
    assert not out.with_name("preds.csv.journal").exists(), "a finished run leaves no journal"


def test_a_killed_worker_is_replaced_and_its_batch_redone_exactly_once(
    archive: Path, random_checkpoint: Path, reference: tuple[bytes, bytes], tmp_path: Path,
    cluster_env: dict[str, str],
) -> None:
    out = tmp_path / "preds.csv"
    run = _start_cli([str(archive), "--out", str(out), "--model", str(random_checkpoint), "--workers", "2",
                      "--batch-size", "1"], cluster_env)
    _wait_for_batches(out.with_name("preds.csv.journal"), 2, run)
    workers = [child for child in psutil.Process(run.pid).children(recursive=True)
               if "spawn_main" in " ".join(child.cmdline())]
    assert len(workers) == 2, [child.cmdline() for child in workers]
    workers[0].send_signal(signal.SIGKILL)
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    assert _outputs(out) == reference


def test_a_killed_client_is_finished_by_resume_and_only_by_resume(
    archive: Path, random_checkpoint: Path, reference: tuple[bytes, bytes], tmp_path: Path,
    cluster_env: dict[str, str],
) -> None:
    out = tmp_path / "preds.csv"
    journal = out.with_name("preds.csv.journal")
    arguments = [str(archive), "--out", str(out), "--model", str(random_checkpoint), "--batch-size", "2"]
    run = _start_cli([*arguments, "--workers", "2"], cluster_env)
    _wait_for_batches(journal, 2, run)
    for process in [psutil.Process(run.pid), *psutil.Process(run.pid).children(recursive=True)]:
        process.send_signal(signal.SIGKILL)  # the client and its cluster die at once, as in a power cut
    run.wait(timeout=60)
    done_before = len(list(journal.glob("batch-*.pickle")))
    assert 2 <= done_before < 10 and not out.exists()

    again = _run_cli([*arguments, "--workers", "1"], cluster_env)
    assert again.returncode == 1 and "--resume" in again.stderr and str(journal) in again.stderr
    other_settings = _run_cli([*arguments, "--workers", "1", "--resume", "--setting", "mask_threshold=0.7"], cluster_env)
    assert other_settings.returncode == 1 and "settings" in other_settings.stderr

    resumed = _run_cli([*arguments, "--workers", "1", "--resume"], cluster_env)
    assert resumed.returncode == 0, resumed.stderr
    assert _outputs(out) == reference
    assert not journal.exists()


def test_an_existing_cluster_is_used_by_address_and_left_running(
    archive: Path, random_checkpoint: Path, reference: tuple[bytes, bytes], tmp_path: Path,
    cluster_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from distributed import Client, LocalCluster

    for name, value in cluster_env.items():
        monkeypatch.setenv(name, value)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        out = tmp_path / "preds.csv"
        assert main(["predict", str(archive), "--out", str(out), "--model", str(random_checkpoint),
                     "--scheduler", cluster.scheduler_address]) == 0
        assert _outputs(out) == reference
        with Client(cluster) as client:  # the user's cluster is still there, its worker too
            assert len(client.scheduler_info()["workers"]) == 1


def test_a_model_no_worker_can_load_and_an_archive_of_bad_files_write_no_csv(
    archive: Path, random_checkpoint: Path, tmp_path: Path, cluster_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in cluster_env.items():
        monkeypatch.setenv(name, value)
    damaged = tmp_path / "model" / "damaged.safetensors"
    damaged.parent.mkdir()
    damaged.write_bytes(random_checkpoint.read_bytes()[:5000])  # the card is fine, the weights are cut short
    shutil.copy(random_checkpoint.with_suffix(".json"), damaged.with_suffix(".json"))
    out = tmp_path / "preds.csv"
    assert main(["predict", str(archive), "--out", str(out), "--model", str(damaged), "--workers", "1"]) == 1
    error = capsys.readouterr().err
    assert "a worker could not load the model" in error and "damaged.safetensors" in error, error
    assert not out.exists() and not out.with_name("preds.csv.journal").exists(), "nothing to resume"

    only_bad = tmp_path / "only-bad"
    only_bad.mkdir()
    (only_bad / "fake.dcm").write_bytes(b"not a dicom at all")
    (only_bad / "truncated.dcm").write_bytes(next(archive.rglob("1.*.dcm")).read_bytes()[:2000])
    assert main(["predict", str(only_bad), "--out", str(out), "--model", str(random_checkpoint),
                 "--workers", "1"]) == 1
    error = capsys.readouterr().err
    assert "no image could be predicted" in error and error.count("fake.dcm") == 1, error
    assert not out.exists() and not out.with_name("preds-scores.csv").exists(), "nothing written for nothing"


def test_resume_needs_a_cluster_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(tmp_path), "--out", str(tmp_path / "p.csv"), "--resume"]) == 2
    assert "--workers or --scheduler" in capsys.readouterr().err


def test_score_order_spilled_to_disk_is_the_stable_sort() -> None:
    scores = [0.5, 0.9, 0.5, 0.1, 0.9, 0.5, 0.3] * 5
    order = _ScoreOrder(chunk_rows=4)  # spills several chunks to temporary files
    for index, score in enumerate(scores):
        order.add(score, f"{index}\n")
    expected = ["header\n"] + [f"{index}\n" for index in sorted(range(len(scores)), key=lambda i: -scores[i])]
    assert list(order.lines("header\n")) == expected
