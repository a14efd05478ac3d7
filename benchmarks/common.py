"""What the benchmark scripts share: figures with their goals, timing and memory helpers, and the
command-line glue that lets `python -m benchmarks` drive each script (see benchmarks/__main__.py).

A script's `run(quick)` returns its headline figures; its `main()` parses its own options plus
`add_runner_arguments`, calls `run` and hands the figures to `report`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pneumoviewer.paths import default_model_path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Figure:
    """One measured value. `goal` is the most it may be (every goal so far is an upper bound)."""

    name: str
    value: float
    unit: str
    goal: float | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.value <= self.goal

    @classmethod
    def from_dict(cls, values: dict) -> Figure:
        return cls(**values)


def interleaved_medians(actions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each action, timed in turns (a, b, c, a, b, c, ...) after one warm-up call
    each, so that a busy neighbour slows every variant alike and their ratios stay fair."""
    for action in actions.values():
        action()
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            times[name] += timed_ms(action, 1)
    return {name: statistics.median(values) / 1000 for name, values in times.items()}


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    """Median wall time of `action` over `repeats` calls, after one untimed warm-up call
    (first calls allocate, pick kernels and fill caches)."""
    action()
    return statistics.median(timed_ms(action, repeats)) / 1000


def timed_ms(action: Callable[[], object], repeats: int) -> list[float]:
    """Milliseconds of each of `repeats` calls of `action`, no warm-up."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def describe(label: str, values_ms: Sequence[float]) -> str:
    """One line: median, 95th percentile and maximum of millisecond timings."""
    return (f"{label:<52} median {statistics.median(values_ms):7.3f} ms   p95 {p95(values_ms):7.3f} ms   "
            f"max {max(values_ms):7.3f} ms")


def peak_rss_mb() -> float:
    """Highest resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_command(command: list[str]) -> tuple[float, float]:
    """Run `command` to completion (raising if it fails): its wall seconds and peak RSS in MB.

    The peak is the child's own VmHWM, polled from /proc while it runs: getrusage(RUSAGE_CHILDREN)
    would report this (large) benchmark process instead, since a child starts as its copy.
    """
    with tempfile.TemporaryFile("w+") as output:  # a pipe could fill up and block the child
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True)
        peak_kib = 0
        status = Path(f"/proc/{child.pid}/status")
        while child.poll() is None:
            try:
                lines = status.read_text().splitlines()
            except OSError:
                lines = []  # just exited, or no /proc (not Linux)
            peak_kib = max([peak_kib, *(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))])
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        if child.returncode != 0:
            output.seek(0)
            raise subprocess.CalledProcessError(child.returncode, command, output.read())
    return seconds, peak_kib / 1024


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller samples (CI smoke run)")
    parser.add_argument("--figures-json", type=Path, metavar="PATH",
                        help="also write the headline figures as JSON (used by `python -m benchmarks`)")
    parser.add_argument("--model", type=Path, metavar="WEIGHTS",
                        help="checkpoint (.safetensors with its .json card) for the benchmarks that run the model; "
                             "default: the bundled model, else random weights of the default architecture")


def chosen_model(model: Path | None) -> Path | None:
    """`--model`, else the bundled model if installed, else None (time random weights instead: the cost
    per image depends on the architecture, not on the weights)."""
    if model is not None:
        return model
    return default_model_path() if default_model_path().is_file() else None


def report(figures: list[Figure], args: argparse.Namespace) -> int:
    """Print the headline figures and write them as JSON if asked; the exit status."""
    from benchmarks.table import text_table

    print("\nHeadline figures:")
    print(text_table([("", figure) for figure in figures]))
    if args.figures_json is not None:
        args.figures_json.write_text(json.dumps([asdict(figure) for figure in figures], indent=1))
    return 0


def make_distinct_copies(folder: Path, count: int) -> Path:
    """An archive of `count` distinct DICOMs under `folder` (100 per series folder), copies of the SIIM files with
    their SOP Instance UID's last component replaced by one of the same length."""
    sources = sorted((DATA / "siim" / "dicom-images").rglob("*.dcm"))
    for index in range(count):
        source = sources[index % len(sources)]
        uid = source.stem
        prefix, last = uid.rsplit(".", 1)
        new_uid = f"{prefix}.{10 ** (len(last) - 1) + index // len(sources)}"
        assert len(new_uid) == len(uid), "the copy's UID must keep the file's element lengths"
        target = folder / f"series{index // 100:05d}" / f"{new_uid}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes().replace(uid.encode(), new_uid.encode()))
    return folder
