"""Does memory stay bounded while a reader goes through a large folder? Prints figures; asserts nothing.

    nice -n 10 .venv/bin/python benchmarks/bench_memory.py [--images 500] [--quick] [--folder DIR] [--model WEIGHTS] [--no-ai]

The real main window (offscreen) opens a folder of N real SIIM DICOMs (symbolic links in a temporary
folder) with the AI sweeping in the background, as in use. Every case is then shown in turn, each one
until its pixels are on the canvas; the resident memory (RSS) is sampled along the way and once more
when the AI has scored the whole folder. Decoded images and Grad-CAM heatmaps are held in small LRU
caches (ui/main_window.py); what grows with the folder is one packed AI mask per case (1 bit a pixel).

Every wait has a deadline, so the figures always come back: the model gets MODEL_WAIT_SECONDS to load
before the folder opens (else the run goes on and says so), and after the last case the AI gets
SWEEP_WAIT_SECONDS to finish the folder; the note says how many cases it scored by then. A quick run
gives the sweep no extra time (its memory is measured as the reader steps, AI sweeping alongside).
The ONNX export stays in the user's cache, as in the app (exported once per model file).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtTest import QTest

from pneumoviewer.ui.app import application

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import (
    Figure,
    add_runner_arguments,
    chosen_model,
    peak_rss_mb,
    report,
)

SIIM_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "siim" / "dicom-images"
SAMPLE_EVERY = 50
MODEL_WAIT_SECONDS = {False: 300, True: 60}  # full / --quick
SWEEP_WAIT_SECONDS = {False: 900, True: 0}


def rss_mb() -> float:
    """Resident memory of this process now (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def linked_folder(source: Path, count: int, work: Path) -> Path:
    files = sorted(source.rglob("*.dcm"))[:count]
    if len(files) < count:
        raise SystemExit(f"bench_memory: only {len(files)} DICOMs under {source}, {count} asked for")
    folder = work / "studies"
    folder.mkdir()
    for number, path in enumerate(files):
        (folder / f"{number:04d}-{path.name}").symlink_to(path)
    return folder


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        QTest.qWait(5)
    return True


def random_model(work: Path) -> Path:
    """No bundled model here: random weights of the default architecture (the same size and cost)."""
    import torch

    from pneumoviewer.model.card import ModelCard, NetworkConfig
    from pneumoviewer.model.checkpoint import save_checkpoint
    from pneumoviewer.model.network import build_network

    torch.manual_seed(0)
    config = NetworkConfig()
    return save_checkpoint(work / "random", build_network(config).eval(), ModelCard(network=config))[0]


def predictor_factory(model: Path | None, ai: bool):
    def unavailable():
        raise RuntimeError("AI switched off for this run (--no-ai)")

    def load():
        from pneumoviewer.model.inference import Predictor

        return Predictor.cached(model)

    if not ai:
        return unavailable
    return load if model is not None else None


def run(folder: Path, work: Path, model: Path | None, ai: bool, quick: bool) -> list[Figure]:
    from pneumoviewer.ui.main_window import MainWindow

    application()
    factory = predictor_factory(model, ai)
    window = MainWindow(**({"predictor_factory": factory} if factory else {}), data_dir=work / "sessions")
    window.setProperty("quiet", True)
    window.resize(1600, 1000)
    window.show()
    queue = window.controller.model_queue
    loading = time.perf_counter()
    model_ready = wait_until(lambda: queue.model_card is not None or queue.model_error is not None,
                             MODEL_WAIT_SECONDS[quick])
    print(f"AI: {window.status.ai_label.text()} ({time.perf_counter() - loading:.1f} s"
          f"{'' if model_ready else f', not ready within {MODEL_WAIT_SECONDS[quick]} s: going on without it'})")
    before = rss_mb()
    started = time.perf_counter()
    window.controller.open_paths([folder])
    wait_until(lambda: window.controller.session is not None and window.worklist_model.rowCount() > 0, 300)
    cases = list(window.controller.session.cases)
    print(f"{len(cases)} cases indexed in {time.perf_counter() - started:.1f} s; RSS {rss_mb():.0f} MB "
          f"(before opening {before:.0f} MB)")
    samples: list[tuple[int, float, int]] = []
    step_started = time.perf_counter()
    for number, case in enumerate(cases, 1):
        window.worklist.selectRow(window.worklist_model.row_of(case.image_id))
        wait_until(lambda case=case: window.case_view.image_id_on_canvas == case.image_id
                   or "cannot be shown" in window.case_view.placeholder.text(), 60)
        if number % SAMPLE_EVERY == 0 or number == len(cases):
            scored = sum(row.score is not None for row in window.worklist_model.rows())
            samples.append((number, rss_mb(), scored))
    stepping = time.perf_counter() - step_started
    swept = not ai or wait_until(
        lambda: all(row.score is not None or row.error for row in window.worklist_model.rows()), SWEEP_WAIT_SECONDS[quick])
    scored = sum(row.score is not None for row in window.worklist_model.rows())
    after_ai = rss_mb()
    packed_ai_masks = sum(case._ai_bits.nbytes for case in cases if case._ai_bits is not None) / 2**20

    print(f"\nstepped through {len(cases)} images in {stepping:.1f} s ({len(cases) / stepping:.1f} images/s), "
          "each until shown on the canvas")
    print(f"{'images shown':>13} {'RSS MB':>8} {'AI-scored':>10}")
    for number, megabytes, done in samples:
        print(f"{number:>13} {megabytes:>8.0f} {done:>10}")
    print(f"{'after the AI sweep' if swept else 'at the end (AI sweep not finished)'}: {scored} of {len(cases)} "
          f"scored, RSS {after_ai:.0f} MB")
    first = samples[min(1, len(samples) - 1)]
    print(f"growth from {first[0]} to {samples[-1][0]} images shown: {samples[-1][1] - first[1]:+.0f} MB")
    print(f"caches at the end: {len(window.controller.images)} decoded images, {len(window.controller.heatmaps)} heatmaps; "
          f"packed AI masks of all cases {packed_ai_masks:.1f} MB")
    print(f"peak RSS over {len(cases)} images: {peak_rss_mb():.0f} MB")
    window.close()
    figures = [Figure(f"peak memory (RSS) of the app over {len(cases)} images", peak_rss_mb(), "MB", None,
                      f"each case shown in turn, AI sweeping ({scored} of {len(cases)} scored by the end"
                      f"{'' if model_ready else '; model not loaded in time'}); LRU caches")]
    if first is not samples[-1]:
        figures.append(Figure(f"  growth from {first[0]} to {samples[-1][0]} images shown", samples[-1][1] - first[1],
                              "MB", None, f"packed AI masks of all cases: {packed_ai_masks:.1f} MB"))
    return [*figures, Figure("  stepping through the folder, each case until shown", len(cases) / stepping,
                             "images/s", None, "while the AI sweeps")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, help="how many images (default 500, quick 20)")
    parser.add_argument("--folder", type=Path, default=SIIM_IMAGES, help="DICOMs to link (recursive)")
    parser.add_argument("--no-ai", action="store_true", help="review without the AI")
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    args.images = args.images or (20 if args.quick else 500)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as work:
        # Recent folders, window layout and autosave stay in the run's folder, not the user's.
        for variable in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):
            os.environ[variable] = f"{work}/{variable.lower()}"
        model = chosen_model(args.model)
        if model is None and not args.no_ai:
            model = random_model(Path(work))
        print(f"bench_memory: {args.images} images from {args.folder}; "
              f"model {'none' if args.no_ai else model}; {os.cpu_count()} CPUs")
        folder = linked_folder(args.folder, args.images, Path(work))
        figures = run(folder, Path(work), model, not args.no_ai, args.quick)
    return report(figures, args)


if __name__ == "__main__":
    sys.exit(main())
