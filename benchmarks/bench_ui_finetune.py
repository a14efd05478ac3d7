"""Does the window stay fluid while a fine-tuning trains? Prints figures; asserts nothing.

    nice -n 10 .venv/bin/python benchmarks/bench_ui_finetune.py [--minutes 1.5] [--drive-seconds 30] [--quick]

The real main window on 40 real SIIM DICOMs (12 with a pneumothorax), predicted by the bundled model
(--model: another), all reviewed (the true lesions drawn: corrected; the other films rejected). Then
Worklist -> "Improve the AI from my reviews..." and Start, as a reader would: the dialog's
`FinetuneRunner` runs `pneumoviewer finetune` as a child process (rehearsal on, the forgetting check
off to keep the run short) with a budget of --minutes.

All the while a heartbeat QTimer ticks every 5 ms on the GUI thread (as in bench_ui.py: the gap
between ticks less the 5 ms is the time the window could not react), and a "user" drives the window:
the next case every 400 ms (image loading and display), a wheel zoom step every 150 ms (in, then out)
and a window/level drag step every 50 ms (what a right-button drag emits). The same drive runs for
--drive-seconds before the training starts and again after it ended: that is the figure without
training, in the same run, for the ratio. Goal: the longest stall <= 50 ms while the child trains.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from pneumoviewer.ui.app import application

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.bench_ui import HEARTBEAT_MS, STALL_GOAL_MS, cpu_wait_ms, predictor_factory  # noqa: E402
from benchmarks.common import DATA, Figure, add_runner_arguments, chosen_model, describe, p95, report  # noqa: E402
from benchmarks.table import busy_since, cpu_ticks  # noqa: E402

POSITIVES, NEGATIVES = 12, 28


def reviewed_folder(work: Path) -> tuple[Path, dict[str, object]]:
    """40 SIIM films copied to `work`/site, and their masks (the reader's review, from the labels)."""
    from pneumoviewer.io.annotations import read_annotation_masks, read_annotation_rows

    rows = read_annotation_rows(DATA / "siim" / "train-rle.csv")
    chosen = (list(dict.fromkeys(i for i, encoded in rows if encoded != "-1"))[:POSITIVES]
              + list(dict.fromkeys(i for i, encoded in rows if encoded == "-1"))[:NEGATIVES])
    labels = work / "site-labels.csv"
    labels.write_text("ImageId,EncodedPixels\n" + "".join(f"{i},{e}\n" for i, e in rows if i in set(chosen)))
    files = {path.stem: path for path in (DATA / "siim" / "dicom-images").rglob("*.dcm")}
    folder = work / "site"
    folder.mkdir()
    for image_id in chosen:
        shutil.copyfile(files[image_id], folder / f"{image_id}.dcm")
    return folder, read_annotation_masks(labels)


class Heartbeat:
    """Gaps of a 5 ms QTimer on the GUI thread, each also less the thread's wait for a CPU (schedstat)."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self._beat)
        self.gaps: list[float] = []
        self.own_gaps: list[float] = []
        self._waited = 0.0

    def start(self) -> None:
        self.gaps, self.own_gaps = [], []
        self._waited = cpu_wait_ms()
        self.clock.start()
        self.timer.start()

    def stop(self) -> tuple[list[float], list[float]]:
        self.timer.stop()
        return self.gaps, self.own_gaps

    def _beat(self) -> None:
        gap = max(self.clock.nsecsElapsed() / 1e6 - HEARTBEAT_MS, 0.0)
        self.clock.restart()
        now = cpu_wait_ms()
        self.gaps.append(gap)
        self.own_gaps.append(max(gap - (now - self._waited), 0.0))
        self._waited = now


class StallTracer:
    """Where the GUI thread is while it stalls: a watchdog thread samples its Python stack every 5 ms once
    the heartbeat has been silent for 30 ms (--trace-stalls); the longest stalls are printed with their
    commonest stacks. (Code that holds the GIL in C without Python frames shows as its Python caller.)"""

    def __init__(self, heartbeat: Heartbeat) -> None:
        self.main = threading.main_thread().ident
        self.last_beat = time.monotonic()
        self.samples: dict[float, list[tuple[str, ...]]] = {}  # stall start -> stacks
        self.running = True
        self.created = time.monotonic()
        heartbeat.timer.timeout.connect(self._beat)
        threading.Thread(target=self._watch, daemon=True).start()

    def _beat(self) -> None:
        self.last_beat = time.monotonic()

    def _watch(self) -> None:
        while self.running:
            time.sleep(0.005)
            started = self.last_beat
            if time.monotonic() - started > 0.030:
                frame = sys._current_frames().get(self.main)
                if frame is not None:
                    stack = tuple(f"{Path(f.filename).name}:{f.lineno} {f.name}"
                                  for f in traceback.extract_stack(frame))
                    self.samples.setdefault(started, []).append(stack[-9:])

    def print_longest(self, count: int = 6) -> None:
        self.running = False
        longest = sorted(self.samples.items(), key=lambda item: -len(item[1]))[:count]
        for started, stacks in longest:
            print(f"  stall at {started - self.created:.1f} s, sampled {len(stacks)} times "
                  f"(~{30 + 5 * len(stacks)} ms):")
            for stack, times in Counter(stacks).most_common(2):
                print(f"    {times}x " + " <- ".join(reversed(stack)))


class User:
    """Steps cases, zooms with the wheel and drags window/level on the real window, on timers."""

    def __init__(self, window) -> None:
        self.window = window
        self.ticks = 0
        self.timers: list[QTimer] = []
        for interval, action in ((400, window.actions_by_name["next_case"].trigger), (150, self._wheel),
                                 (50, self._window_level)):
            timer = QTimer()
            timer.setInterval(interval)
            timer.timeout.connect(action)
            self.timers.append(timer)

    def start(self) -> None:
        for timer in self.timers:
            timer.start()

    def stop(self) -> None:
        for timer in self.timers:
            timer.stop()

    def _wheel(self) -> None:
        self.ticks += 1
        viewport = self.window.canvas.viewport()
        centre = QPointF(viewport.width() / 2, viewport.height() / 2)
        step = 120 if (self.ticks // 4) % 2 == 0 else -120  # four notches in, four out
        event = QWheelEvent(centre, QPointF(viewport.mapToGlobal(centre.toPoint())), QPoint(0, 0), QPoint(0, step),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QApplication.sendEvent(viewport, event)

    def _window_level(self) -> None:
        sign = 1.0 if (self.ticks // 4) % 2 == 0 else -1.0
        self.window.canvas.view.sigWindowDragged.emit(3.0 * sign, 2.0 * sign)


def run_until(app, condition: Callable[[], bool], timeout_s: float) -> None:
    """Run the event loop until `condition()` (polled every 50 ms) or the timeout."""
    deadline = time.monotonic() + timeout_s
    poll = QTimer()
    poll.setInterval(50)
    poll.timeout.connect(lambda: (condition() or time.monotonic() > deadline) and app.exit(0))
    poll.start()
    app.exec()
    poll.stop()


def bench(work: Path, factory, minutes: float, drive_s: float, extra_arguments: list[str],
          trace: bool = False) -> list[Figure]:
    from pneumoviewer.review.case import ReviewStatus
    from pneumoviewer.ui.main_window import MainWindow

    app = application()
    folder, masks = reviewed_folder(work)
    kwargs: dict[str, object] = {"data_dir": work / "sessions"}
    if factory is not None:
        kwargs["predictor_factory"] = factory
    window = MainWindow(**kwargs)
    window.setProperty("quiet", True)
    window.resize(1600, 1000)
    window.show()
    window.controller.open_paths([folder])
    run_until(app, lambda: bool(window.worklist_model.rows()) and all(
        row.score is not None or row.error for row in window.worklist_model.rows()), 900)
    for case in window.controller.session.cases:  # the reader's review
        if masks[case.image_id].any():
            case.load_mask(masks[case.image_id])
            case.set_status(ReviewStatus.CORRECTED)
        else:
            case.set_status(ReviewStatus.REJECTED)
    window.actions_by_name["improve_ai"].trigger()
    dialog = window.finetune_dialog
    run_until(app, lambda: dialog.cases is not None, 120)
    dialog.extra_arguments = extra_arguments
    dialog.budget.addItem(f"{minutes:g} minutes", minutes)
    dialog.budget.setCurrentIndex(dialog.budget.count() - 1)

    heartbeat, user = Heartbeat(), User(window)
    tracer = StallTracer(heartbeat) if trace else None
    user.start()

    def drive_for(seconds: float) -> tuple[list[float], list[float]]:
        heartbeat.start()
        run_until(app, lambda: False, seconds)
        return heartbeat.stop()

    before, before_own = drive_for(drive_s)
    phases: list[tuple[float, str]] = []
    dialog.runner.sigPhase.connect(lambda text: phases.append((time.monotonic(), text)))
    ended: list[str] = []
    dialog.runner.sigFinished.connect(lambda _summary: ended.append("finished"))
    dialog.runner.sigFailed.connect(ended.append)
    gaps, own, phase_of_gap = [], [], []
    heartbeat.start()
    others_before = cpu_ticks()
    started = time.monotonic()
    dialog.start_button.click()
    tagger = QTimer()  # tags the gaps since the last tag with the child's phase (training or not)
    tagger.setInterval(100)

    def tag() -> None:
        new = heartbeat.gaps[len(phase_of_gap):]
        phase_of_gap.extend([phases[-1][1] if phases else "starting"] * len(new))

    tagger.timeout.connect(tag)
    tagger.start()
    run_until(app, lambda: bool(ended), minutes * 60 + 900)
    tag()
    tagger.stop()
    gaps, own = heartbeat.stop()
    child_s = time.monotonic() - started
    others = busy_since(others_before, child_s) or "none"
    after, after_own = drive_for(drive_s)
    user.stop()
    training = [gap for gap, phase in zip(gaps, phase_of_gap, strict=False) if phase == "training"]
    training_own = [gap for gap, phase in zip(own, phase_of_gap, strict=False) if phase == "training"]
    baseline, baseline_own = before + after, before_own + after_own
    outcome = ended[0] if ended else "no end within the timeout"
    print(f"\n[stall while fine-tuning] {len(window.controller.session.cases)} reviewed films; the child process ran "
          f"{child_s:.0f} s ({outcome}); phases: {', '.join(text for _, text in phases)}")
    print("  " + describe(f"without training ({drive_s:.0f} s before + {drive_s:.0f} s after)", baseline))
    print("  " + describe("  the same, less the UI thread's wait for a CPU", baseline_own))
    print("  " + describe("while the child process runs (all phases)", gaps))
    if training:
        print("  " + describe("while it trains", training))
        print("  " + describe("  the same, less the UI thread's wait for a CPU", training_own))
    print(f"  other processes busy meanwhile (% of one core): {others}")
    moments = _cumulative_seconds(gaps)
    longest = sorted(range(len(gaps)), key=lambda i: -gaps[i])[:5]
    print("  longest stalls while the child runs: " + ", ".join(
        f"{gaps[i]:.0f} ms at {moments[i]:.1f} s ({phase_of_gap[i] if i < len(phase_of_gap) else '?'})"
        for i in longest))
    if tracer is not None:
        tracer.print_longest()
    window.close()
    if not training:
        raise SystemExit(f"the fine-tuning never reached its training phase: {outcome}")
    ratio_p95 = p95(training) / max(p95(baseline), 0.1)
    return [
        Figure("longest event-loop stall while a fine-tuning trains", max(training), "ms", STALL_GOAL_MS,
               f"p95 {p95(training):.1f} ms, {sum(g > 50 for g in training)} of {len(training)} ticks > 50 ms; "
               f"stepping, zooming, window/level; other processes: {others}"),
        Figure("  the same, less the UI thread's waits for a CPU", max(training_own), "ms", STALL_GOAL_MS,
               f"p95 {p95(training_own):.1f} ms"),
        Figure("  without training, same drive, same run", max(baseline), "ms", STALL_GOAL_MS,
               f"p95 {p95(baseline):.1f} ms; less the waits for a CPU: max {max(baseline_own):.1f} ms"),
        Figure("  p95 stall, training / without", ratio_p95, "x", None,
               f"max: {max(training) / max(max(baseline), 0.1):.2f}x"),
        Figure("  longest stall over the child's whole run", max(gaps), "ms", None,
               f"start, reading, training, gate: {child_s:.0f} s"),
    ]


def _cumulative_seconds(gaps: list[float]) -> list[float]:
    """When each gap ended, in seconds since the first tick (each tick is 5 ms plus its gap)."""
    moments, total = [], 0.0
    for gap in gaps:
        total += (gap + HEARTBEAT_MS) / 1000
        moments.append(total)
    return moments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, help="the fine-tuning budget (default 1.5; quick 0.3)")
    parser.add_argument("--drive-seconds", type=float, help="the drive without training, before and after "
                                                            "(default 30; quick 8)")
    parser.add_argument("--trace-stalls", action="store_true", help="print where the GUI thread was in the longest "
                                                                       "stalls (a stack-sampling watchdog thread)")
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    minutes = args.minutes or (0.3 if args.quick else 1.5)
    drive_s = args.drive_seconds or (8.0 if args.quick else 30.0)
    extra = ["--no-forgetting", *(["--no-rehearsal"] if args.quick else [])]
    with tempfile.TemporaryDirectory(prefix="bench-ui-finetune-") as scratch:
        work = Path(scratch)
        os.environ["XDG_DATA_HOME"] = str(work / "xdg")  # recent folders stay in the benchmark
        application().setQuitOnLastWindowClosed(False)
        figures = bench(work, predictor_factory(work, chosen_model(args.model)), minutes, drive_s, extra,
                        args.trace_stalls)
    return report(figures, args)


if __name__ == "__main__":
    sys.exit(main())
