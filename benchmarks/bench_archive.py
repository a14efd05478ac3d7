"""Archive scale: `pneumoviewer predict` in one process against a local Dask cluster of 2 workers.

    nice -n 10 .venv/bin/python benchmarks/bench_archive.py [--quick]

An archive of distinct DICOMs is made from the SIIM files (each copy gets its own SOP Instance UID,
patched in place at the same length, so every file is a new image). Measured in one run, so that
the ratio is fair on a shared machine: images/s of the plain single-process command and of
`--workers 2` on the same files with the bundled model (wall time, start-up included, and after
start-up); the cost of starting the cluster (worker processes up, the model loaded in each); and
the client's peak memory (RSS, polled) for a large and a ten times smaller run with a small 64²
model, whose decoding dominates, so that the file count, not the network, is what grows. The
estimate for a 1M-image archive on k workers is printed from these figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import Figure, add_runner_arguments, make_distinct_copies, report

MEMORY_GROWTH_GOAL = 1.25  # peak client memory, 10x the files: at most 25 % more


def timed_predict(arguments: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, the client process's peak RSS in MB, polled every 50 ms)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pneumoviewer", "predict", *arguments], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    client = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            peak = max(peak, client.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    stderr = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"predict {' '.join(arguments)} failed: {stderr[-2000:]}")
    return time.perf_counter() - started, peak / 2**20


def cluster_start_seconds(workers: int, env: dict[str, str]) -> float:
    """Seconds from nothing to `workers` worker processes with the bundled model loaded in each."""
    code = (
        "import time; started = time.perf_counter()\n"
        "from argparse import Namespace\n"
        "from pneumoviewer.commands._archive import ArchiveOptions, open_client\n"
        "from pneumoviewer.io.rle import RleConvention\n"
        f"client = open_client(ArchiveOptions([], None, {{}}, RleConvention.RELATIVE, {workers}, None, False, None))\n"
        "print(time.perf_counter() - started); client.close(); client.cluster.close()\n"
    )
    finished = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(finished.stdout.strip().splitlines()[-1])


def small_model(folder: Path) -> Path:
    import torch

    from pneumoviewer.model.card import ModelCard, NetworkConfig
    from pneumoviewer.model.checkpoint import save_checkpoint
    from pneumoviewer.model.network import build_network

    torch.manual_seed(0)
    config = NetworkConfig(input_size=64, decoder_channels=(32, 16, 16, 8, 8))
    weights, _ = save_checkpoint(folder / "small", build_network(config).eval(), ModelCard(network=config),
                                 half=False)
    return weights


def run(quick: bool) -> list[Figure]:
    """Quick: the speed comparison on 30 images only. Full: 240 images, the start-up, and memory."""
    speed_files = 30 if quick else 240
    with tempfile.TemporaryDirectory(prefix="pneumoviewer-archive-") as scratch:
        root = Path(scratch)
        env = {**os.environ, "XDG_CACHE_HOME": str(root / "cache")}
        speed = make_distinct_copies(root / "speed", speed_files)
        single_s, _ = timed_predict([str(speed), "--out", str(root / "single.csv")], env)
        cluster_s, _ = timed_predict([str(speed), "--out", str(root / "cluster.csv"), "--workers", "2"], env)
        identical = all((root / f"single{suffix}").read_bytes() == (root / f"cluster{suffix}").read_bytes()
                        for suffix in (".csv", "-scores.csv"))
        print(f"{speed_files} images: 1 process {single_s:.1f} s, 2 workers {cluster_s:.1f} s (both with start-up); "
              f"CSVs identical: {identical}")
        figures = [
            Figure("archive predict, 1 process", single_s / speed_files, "s/image", None,
                   f"{speed_files} images, wall incl. model load"),
            Figure("archive predict, 2 Dask workers", cluster_s / speed_files, "s/image", single_s / speed_files,
                   f"wall incl. cluster start; identical CSVs: {identical}"),
        ]
        if not quick:
            figures += _start_and_memory(root, env, speed_files, cluster_s)
    return figures


def _start_and_memory(root: Path, env: dict[str, str], speed_files: int, cluster_s: float) -> list[Figure]:
    memory_files = 10_000
    start_s = cluster_start_seconds(2, env)
    steady_rate = speed_files / max(cluster_s - start_s, 1e-9)
    model = small_model(root)
    memory = make_distinct_copies(root / "memory", memory_files)
    assert sum(1 for _ in memory.rglob("*.dcm")) == memory_files, "every copy must be a distinct image"
    peaks = {}
    for count in (memory_files // 10, memory_files):
        subset = [str(path) for path in sorted(memory.iterdir())[: count // 100]]
        _, peaks[count] = timed_predict([*subset, "--out", str(root / f"memory{count}.csv"), "--model",
                                         str(model), "--workers", "2", "--batch-size", "64"], env)
    growth = peaks[memory_files] / peaks[memory_files // 10]
    print(f"cluster start-up (2 workers, model loaded): {start_s:.1f} s; after it {steady_rate:.2f} images/s")
    print(f"client peak RSS: {peaks[memory_files // 10]:.0f} MB for {memory_files // 10:,} files, "
          f"{peaks[memory_files]:.0f} MB for {memory_files:,} (x{growth:.2f})")
    per_worker = steady_rate / 2
    for workers in (2, 16, 64):
        hours = 1_000_000 / (per_worker * workers) / 3600
        print(f"estimate, 1M images on {workers} such workers: {hours:.1f} h (+{start_s:.0f} s start-up)")
    return [
        Figure("Dask cluster start, 2 workers with the model", start_s, "s", None,
               f"processes up, model loaded; {1 / steady_rate:.3f} s/image after it"),
        Figure(f"client peak memory, {memory_files:,} files vs {memory_files // 10:,}", growth, "x",
               MEMORY_GROWTH_GOAL, f"{peaks[memory_files]:.0f} MB vs {peaks[memory_files // 10]:.0f} MB RSS"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    return report(run(args.quick), args)


if __name__ == "__main__":
    sys.exit(main())
