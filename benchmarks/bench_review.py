"""How fast mask editing and autosave are on a 1024² mask, in the core (no Qt). Asserts nothing.

    nice -n 10 .venv/bin/python benchmarks/bench_review.py [--quick]

Goal: a brush stroke segment (one mouse event) well under 16 ms, so painting keeps up with a
60 Hz display (bench_ui.py times the same through the real window). For scale, the same run times
the naive way (paint the disc over the whole image and snapshot the whole mask for undo).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pneumoviewer.review.case import Case, ReviewStatus
from pneumoviewer.review.mask_editor import MaskEditor
from pneumoviewer.review.session import ReviewSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import (
    DATA,
    Figure,
    add_runner_arguments,
    describe,
    p95,
    report,
    timed_ms,
)

SIZE = 1024
STROKE_GOAL_MS = 16.0


def drag_path(step: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """A wandering mouse drag: `count` events `step` pixels apart, bouncing off a 60 px margin."""
    angles = np.cumsum(rng.normal(0, 0.4, count))
    moves = np.stack([np.sin(angles), np.cos(angles)], axis=1) * step
    span = SIZE - 120
    offsets = np.mod(SIZE / 2 - 60 + np.cumsum(moves, axis=0), 2 * span)
    return 60 + span - np.abs(offsets - span)


def bench_strokes(rng: np.random.Generator, events: int) -> list[Figure]:
    print(f"Brush stroke segments (one paint() call per mouse event), {SIZE}x{SIZE} mask")
    segments: dict[int, list[float]] = {}
    for radius, step in [(5, 4), (20, 8), (20, 40), (50, 15), (50, 120)]:
        editor = MaskEditor(np.zeros((SIZE, SIZE), dtype=bool))
        path = drag_path(step, events, rng)
        times: list[float] = []
        editor.begin_stroke()
        for row, col in path:
            started = time.perf_counter()
            editor.paint(row, col, radius)
            times.append((time.perf_counter() - started) * 1000.0)
        segments.setdefault(radius, []).extend(times)
        end_ms = timed_ms(editor.end_stroke, 1)[0]
        undo_ms = timed_ms(editor.undo, 1)[0]
        redo_ms = timed_ms(editor.redo, 1)[0]
        print(describe(f"  radius {radius:>2}, {step:>3} px between events", times))
        print(f"{'':<4}end_stroke {end_ms:.3f} ms, undo of the {events}-event stroke {undo_ms:.3f} ms, "
              f"redo {redo_ms:.3f} ms, history {editor.history_bytes / 1024:.0f} KiB "
              f"({int(editor.mask.sum())} px painted)")

    # The naive way, for scale: a full-image distance test and a full-mask undo snapshot per event.
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    rows, cols = np.ogrid[:SIZE, :SIZE]
    snapshots: list[np.ndarray] = []

    def naive_segment() -> None:
        snapshots.append(mask.copy())
        mask[(rows - 500) ** 2 + (cols - 500) ** 2 <= 20**2] = True

    naive = timed_ms(naive_segment, 60)
    editor = MaskEditor(np.zeros((SIZE, SIZE), dtype=bool))
    editor.begin_stroke()
    ours = timed_ms(lambda: editor.paint(500 + rng.uniform(-8, 8), 500 + rng.uniform(-8, 8), 20), 60)
    editor.end_stroke()
    speed_up = statistics.median(naive) / statistics.median(ours)
    print(describe("  naive full-image segment (radius 20)", naive))
    print(f"  -> bounding-box segment is {speed_up:.0f}x faster "
          f"(medians, same run); naive undo memory {len(snapshots)} MiB for 60 events")
    largest = segments[50]
    return [Figure("brush segment on a 1024² mask, core only, radius 50 px", statistics.median(largest), "ms",
                   STROKE_GOAL_MS, f"MaskEditor.paint per mouse event; p95 {p95(largest):.2f} ms, "
                   f"{len(largest)} events"),
            Figure("  speed-up over a naive full-image segment", speed_up, "x", None,
                   "radius 20; naive also snapshots 1 MiB per event for undo; same run")]


def bench_single_steps() -> list[Figure]:
    print(f"Single-step edits (each timed alone, then undone untimed), {SIZE}x{SIZE} mask")
    rows, cols = np.ogrid[:SIZE, :SIZE]
    ai_mask = (rows - 500) ** 2 / 300**2 + (cols - 400) ** 2 / 150**2 <= 1
    editor = MaskEditor(np.zeros((SIZE, SIZE), dtype=bool))

    def edit_then_undo(label: str, edit: Callable[[], object], repeats: int = 20) -> list[float]:
        times = []
        for _ in range(repeats):
            times += timed_ms(edit, 1)
            editor.undo()
        print(describe(f"  {label}", times))
        return times

    edit_then_undo("start from the AI mask (set_mask, 141k px)", lambda: editor.set_mask(ai_mask))
    ring = ai_mask & ~((rows - 500) ** 2 / 297**2 + (cols - 400) ** 2 / 147**2 <= 1)
    editor.set_mask(ring)
    edit_then_undo("fill inside a drawn contour (~137k px)", lambda: editor.fill(500, 400))
    whole = edit_then_undo("fill the whole background (~1M px)", lambda: editor.fill(5, 5), 10)
    edit_then_undo("clear", editor.clear)
    return [Figure("flood fill of the whole 1024² background", statistics.median(whole), "ms", None,
                   "~1M px, one undo step")]


def bench_autosave(rng: np.random.Generator) -> list[Figure]:
    print("Autosave (RLE mask file or JSON index, temp + fsync + rename), per committed edit")
    with tempfile.TemporaryDirectory() as scratch:
        cases = [Case(f"1.2.3.{n}", f"Case {n:04d}", (SIZE, SIZE)) for n in range(1000)]
        session = ReviewSession(Path(scratch) / "study", cases, data_dir=Path(scratch) / "data")  # noqa: F841 (kept alive: it autosaves)
        case = cases[0]
        case.set_status(ReviewStatus.CORRECTED)
        end_times = []
        for _ in range(30):
            case.editor.begin_stroke()
            for row, col in drag_path(6, 30, rng):
                case.editor.paint(row, col, 15)
            end_times += timed_ms(case.editor.end_stroke, 1)
        print(describe("  end_stroke incl. autosave of that case's mask", end_times))
        statuses = iter([ReviewStatus.ACCEPTED, ReviewStatus.CORRECTED] * 15)
        for other in cases[1:600]:  # a session well under way: 600 statuses in the index
            other.status = ReviewStatus.ACCEPTED
        status_times = timed_ms(lambda: case.set_status(next(statuses)), 30)
        print(describe("  status change incl. autosave of the index (600 done)", status_times))
    return [Figure("end of a stroke incl. autosave (fsync) of the mask", statistics.median(end_times), "ms", None,
                   f"one undo step + atomic RLE write; p95 {p95(end_times):.1f} ms"),
            Figure("status change incl. autosave of the session index", statistics.median(status_times), "ms", None,
                   "1,000 cases, 600 reviewed")]


def bench_import_and_restore() -> list[Figure]:
    labels = DATA / "siim" / "train-rle.csv"
    ids = list(dict.fromkeys(line.split(",")[0] for line in labels.read_text().splitlines()[1:]))
    with tempfile.TemporaryDirectory() as scratch:
        folder, data = Path(scratch) / "study", Path(scratch) / "data"
        session = ReviewSession(folder, [Case(i, f"Case {n:04d}", (SIZE, SIZE)) for n, i in enumerate(ids)], data)
        started = time.perf_counter()
        summary = session.import_annotations(labels)
        imported = time.perf_counter() - started
        del session
        started = time.perf_counter()
        ReviewSession(folder, [Case(i, f"Case {n:04d}", (SIZE, SIZE)) for n, i in enumerate(ids)], data)
        restored = time.perf_counter() - started
    print(f"Import of the SIIM train-rle.csv ({len(ids)} images, {summary.positive} positive, "
          f"each positive autosaved): {imported:.2f} s")
    print(f"Reopening that folder (restore {summary.positive} masks): {restored:.2f} s")
    return [Figure("import an annotation CSV into a session", imported, "s", None,
                   f"SIIM train-rle.csv: {len(ids):,} images, {summary.positive} masks autosaved"),
            Figure("reopen that session (restore every mask)", restored, "s", None,
                   f"{summary.positive} masks")]


def run(quick: bool) -> list[Figure]:
    rng = np.random.default_rng(0)
    return (bench_strokes(rng, 100 if quick else 400) + bench_single_steps() + bench_autosave(rng)
            + bench_import_and_restore())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    return report(run(args.quick), args)


if __name__ == "__main__":
    sys.exit(main())
