"""How fast mask editing and autosave are on a 1024² mask. Prints figures; asserts nothing.

    nice -n 10 .venv/bin/python benchmarks/bench_review.py

Goal: a brush stroke segment (one mouse event) well under 16 ms, so painting keeps up with a
60 Hz display. For scale, the same run times the naive way (paint the disc over the whole image
and snapshot the whole mask for undo).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pneumoviewer.review.case import Case, ReviewStatus
from pneumoviewer.review.mask_editor import MaskEditor
from pneumoviewer.review.session import ReviewSession

SIZE = 1024


def timed(action: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def describe(label: str, times_ms: list[float]) -> str:
    ordered = sorted(times_ms)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{label:<52} median {statistics.median(ordered):7.3f} ms   p95 {p95:7.3f} ms   max {ordered[-1]:7.3f} ms"


def drag_path(step: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """A wandering mouse drag: `count` events `step` pixels apart, bouncing off a 60 px margin."""
    angles = np.cumsum(rng.normal(0, 0.4, count))
    moves = np.stack([np.sin(angles), np.cos(angles)], axis=1) * step
    span = SIZE - 120
    offsets = np.mod(SIZE / 2 - 60 + np.cumsum(moves, axis=0), 2 * span)
    return 60 + span - np.abs(offsets - span)


def bench_strokes(rng: np.random.Generator) -> None:
    print("Brush stroke segments (one paint() call per mouse event), 1024x1024 mask")
    for radius, step in [(5, 4), (20, 8), (20, 40), (50, 15), (50, 120)]:
        editor = MaskEditor(np.zeros((SIZE, SIZE), dtype=bool))
        path = drag_path(step, 400, rng)
        times: list[float] = []
        editor.begin_stroke()
        for row, col in path:
            started = time.perf_counter()
            editor.paint(row, col, radius)
            times.append((time.perf_counter() - started) * 1000.0)
        end_ms = timed(editor.end_stroke, 1)[0]
        undo_ms = timed(editor.undo, 1)[0]
        redo_ms = timed(editor.redo, 1)[0]
        print(describe(f"  radius {radius:>2}, {step:>3} px between events", times))
        print(f"{'':<4}end_stroke {end_ms:.3f} ms, undo of the 400-event stroke {undo_ms:.3f} ms, "
              f"redo {redo_ms:.3f} ms, history {editor.history_bytes / 1024:.0f} KiB "
              f"({int(editor.mask.sum())} px painted)")

    # The naive way, for scale: a full-image distance test and a full-mask undo snapshot per event.
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    rows, cols = np.ogrid[:SIZE, :SIZE]
    snapshots: list[np.ndarray] = []

    def naive_segment() -> None:
        snapshots.append(mask.copy())
        mask[(rows - 500) ** 2 + (cols - 500) ** 2 <= 20**2] = True

    naive = timed(naive_segment, 60)
    editor = MaskEditor(np.zeros((SIZE, SIZE), dtype=bool))
    editor.begin_stroke()
    ours = timed(lambda: editor.paint(500 + rng.uniform(-8, 8), 500 + rng.uniform(-8, 8), 20), 60)
    editor.end_stroke()
    print(describe("  naive full-image segment (radius 20)", naive))
    print(f"  -> bounding-box segment is {statistics.median(naive) / statistics.median(ours):.0f}x faster "
          f"(medians, same run); naive undo memory {len(snapshots)} MiB for 60 events")


def bench_single_steps() -> None:
    print("Single-step edits (each timed alone, then undone untimed), 1024x1024 mask")
    rows, cols = np.ogrid[:SIZE, :SIZE]
    ai_mask = (rows - 500) ** 2 / 300**2 + (cols - 400) ** 2 / 150**2 <= 1
    editor = MaskEditor(np.zeros((SIZE, SIZE), dtype=bool))

    def edit_then_undo(label: str, edit: Callable[[], object], repeats: int = 20) -> None:
        times = []
        for _ in range(repeats):
            times += timed(edit, 1)
            editor.undo()
        print(describe(f"  {label}", times))

    edit_then_undo("start from the AI mask (set_mask, 141k px)", lambda: editor.set_mask(ai_mask))
    ring = ai_mask & ~((rows - 500) ** 2 / 297**2 + (cols - 400) ** 2 / 147**2 <= 1)
    editor.set_mask(ring)
    edit_then_undo("fill inside a drawn contour (~137k px)", lambda: editor.fill(500, 400))
    edit_then_undo("fill the whole background (~1M px)", lambda: editor.fill(5, 5), 10)
    edit_then_undo("clear", editor.clear)


def bench_autosave(rng: np.random.Generator) -> None:
    print("Autosave (RLE mask file or JSON index, temp + fsync + rename), per committed edit")
    with tempfile.TemporaryDirectory() as scratch:
        cases = [Case(f"1.2.3.{n}", f"Case {n:04d}", (SIZE, SIZE)) for n in range(1000)]
        session = ReviewSession(Path(scratch) / "study", cases, data_dir=Path(scratch) / "data")
        case = cases[0]
        case.set_status(ReviewStatus.CORRECTED)
        end_times = []
        for _ in range(30):
            case.editor.begin_stroke()
            for row, col in drag_path(6, 30, rng):
                case.editor.paint(row, col, 15)
            end_times += timed(case.editor.end_stroke, 1)
        print(describe("  end_stroke incl. autosave of that case's mask", end_times))
        statuses = iter([ReviewStatus.ACCEPTED, ReviewStatus.CORRECTED] * 15)
        for other in cases[1:600]:  # a session well under way: 600 statuses in the index
            other.status = ReviewStatus.ACCEPTED
        print(describe("  status change incl. autosave of the index (600 done)",
                       timed(lambda: case.set_status(next(statuses)), 30)))


def bench_import_and_restore() -> None:
    labels = Path(__file__).resolve().parents[2] / "shared" / "data" / "siim" / "train-rle.csv"
    if not labels.exists():
        print(f"(skipping import/restore: {labels} not found)")
        return
    ids = list(dict.fromkeys(line.split(",")[0] for line in labels.read_text().splitlines()[1:]))
    with tempfile.TemporaryDirectory() as scratch:
        folder, data = Path(scratch) / "study", Path(scratch) / "data"
        session = ReviewSession(folder, [Case(i, f"Case {n:04d}", (SIZE, SIZE)) for n, i in enumerate(ids)], data)
        started = time.perf_counter()
        summary = session.import_annotations(labels)
        print(f"Import of the SIIM train-rle.csv ({len(ids)} images, {summary.positive} positive, "
              f"each positive autosaved): {time.perf_counter() - started:.2f} s")
        del session
        started = time.perf_counter()
        ReviewSession(folder, [Case(i, f"Case {n:04d}", (SIZE, SIZE)) for n, i in enumerate(ids)], data)
        print(f"Reopening that folder (restore {summary.positive} masks): {time.perf_counter() - started:.2f} s")


def main() -> None:
    rng = np.random.default_rng(0)
    bench_strokes(rng)
    bench_single_steps()
    bench_autosave(rng)
    bench_import_and_restore()


if __name__ == "__main__":
    main()
