"""A folder of 10,000 studies in the app: first rows, background indexing, a fluid worklist, bounded memory.

    nice -n 10 .venv/bin/python benchmarks/bench_large_folder.py [--studies 10000] [--quick]

The folder holds distinct copies of the SIIM DICOMs (each its own SOP Instance UID, one study per
file; benchmarks.common.make_distinct_copies). The real main window (offscreen) opens it with the
bundled model; a 5 ms heartbeat measures the longest time the event loop could not react while
the worklist fills and then while the AI scores cases, and meanwhile a "user" scrolls the worklist,
sorts it by another column and back, and filters it by status, one action every 250 ms. Measured:
time from the open request to the first rows and to the whole folder indexed, the longest stall
before the first rows (the opening: no list to scroll yet), then in each phase and in the ticks right
after each sort or filter change (goal <= 50 ms), and the app's peak memory (RSS). The folder is
opened as the window is shown (a launcher with a folder: `ui.app.prepare_to_open_with_the_window`
first, as `run_app` does), or with `--open-after S` that long after
(a reader who picks it in the dialog: the window has imported the review stack by then).
`--sample-stalls PATH` writes what the GUI thread ran in the late ticks
(benchmarks/stall_sampler.py).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QTimer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import Figure, add_runner_arguments, make_distinct_copies, p95, peak_rss_mb, report

HEARTBEAT_MS = 5
FIRST_ROWS_GOAL_S = 1.0
STALL_GOAL_MS = 50.0
AI_PHASE_SECONDS = 15
AFTER_ACTION_S = 0.1  # the ticks this soon after a sort or filter change are counted as its stall
SORT_AND_FILTER_ACTIONS = range(3, 7)  # user_actions() after the three scrolls


def user_actions(window) -> list:
    """What a reader does with a long worklist: scroll, sort by another column and back, filter by status."""
    table = window.worklist
    filter_box = window.panels.status_filter
    scrollbar = table.verticalScrollBar()
    actions = []
    for fraction in (0.9, 0.1, 0.5):
        actions.append(lambda f=fraction: scrollbar.setValue(int(scrollbar.maximum() * f)))
    actions.append(lambda: table.sortByColumn(0, table.horizontalHeader().sortIndicatorOrder()))
    actions.append(lambda: table.sortByColumn(window.worklist_model.sort_order[0], table.horizontalHeader()
                                              .sortIndicatorOrder()))
    actions.append(lambda: filter_box.setCurrentIndex((filter_box.currentIndex() + 1) % filter_box.count()))
    actions.append(lambda: filter_box.setCurrentIndex(0))
    return actions


def measure(folder: Path, data_dir: Path, studies: int, sample_stalls: Path | None = None,
            open_after_s: float = 0.0) -> list[Figure]:
    from pneumoviewer.ui.app import application, prepare_to_open_with_the_window
    from pneumoviewer.ui.main_window import MainWindow

    app = application()
    started = time.perf_counter()
    prepare_to_open_with_the_window([] if open_after_s else [folder])  # as `run_app` does
    imported_s = time.perf_counter() - started
    window = MainWindow(data_dir=data_dir)
    window.setProperty("quiet", True)
    window.resize(1600, 1000)
    window.show()
    gaps: dict[str, list[float]] = {"opening": [], "filling": [], "scoring": [], "sorting/filtering": []}
    phase = ["opening"]
    clock = QElapsedTimer()
    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)
    action_until = [0.0]  # perf_counter until which ticks count as the last sort/filter change's
    session_opened = [False]  # the next tick measures the end of indexing (the session replacing the listed rows)
    window.controller.sigSessionOpened.connect(lambda: session_opened.__setitem__(0, True))
    indexed_tick = [float("nan")]
    opened_at: list[float | None] = [None]  # ticks count from the open request
    before_open: list[float] = []
    late: list[tuple[float, float, str]] = []  # each late tick: seconds after the open, its stall, the phase
    sampler = None
    if sample_stalls is not None:
        from benchmarks.stall_sampler import StallSampler

        sampler = StallSampler(threading.get_ident(), threading.get_native_id())
        sampler.start()

    def beat() -> None:
        gap = max(clock.nsecsElapsed() / 1e6 - HEARTBEAT_MS, 0.0)
        clock.restart()
        if opened_at[0] is None:
            before_open.append(gap)  # the window starting up (with --open-after)
            return
        if phase[0] == "opening" and window.worklist_model.total_count:
            phase[0] = "filling"  # the tick that listed the first rows is the filling's
        gaps[phase[0]].append(gap)
        now = time.perf_counter()
        if now <= action_until[0]:
            gaps["sorting/filtering"].append(gap)
        if session_opened[0]:
            session_opened[0] = False
            indexed_tick[0] = gap
        if gap > STALL_GOAL_MS:
            late.append((now - (opened_at[0] or now), gap, phase[0]))
            if sampler is not None:
                sampler.stalled(now - (gap + HEARTBEAT_MS) / 1000, now)

    heartbeat.timeout.connect(beat)
    actions = user_actions(window)
    step = [0]

    def act() -> None:
        if window.worklist_model.total_count:
            action = step[0] % len(actions)
            actions[action]()
            step[0] += 1
            if action in SORT_AND_FILTER_ACTIONS:
                action_until[0] = time.perf_counter() + AFTER_ACTION_S

    user = QTimer()
    user.setInterval(250)
    user.timeout.connect(act)
    marks: dict[str, float] = {}  # perf_counter seconds; reported from the open request (negative: before it)

    def mark_once(name: str) -> None:
        marks.setdefault(name, time.perf_counter())

    window.controller.model_queue.sigModelReady.connect(lambda *_: mark_once("model loaded"))
    window.controller.model_queue.sigPredicted.connect(lambda *_: mark_once("first AI result"))

    def check() -> None:
        if opened_at[0] is None:
            return
        now = time.perf_counter()
        if "first rows" not in marks and window.worklist_model.total_count:
            marks["first rows"] = now
        if "indexed" not in marks and window.controller.session is not None:
            marks["indexed"] = now
            phase[0] = "scoring"
            QTimer.singleShot(AI_PHASE_SECONDS * 1000, lambda: app.exit(0))
        if now - opened_at[0] > 900:
            app.exit(1)

    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(check)
    for timer in (heartbeat, user, poll):
        timer.start()
    clock.start()

    def open_folder() -> None:
        opened_at[0] = time.perf_counter()
        window.controller.open_paths([folder])

    planned_open = time.perf_counter() + open_after_s
    if open_after_s:
        QTimer.singleShot(int(open_after_s * 1000), open_folder)
    else:
        open_folder()
    if os.environ.get("PROFILE_GUI"):
        import cProfile
        cProfile.runctx("app.exec()", globals(), locals(), os.environ["PROFILE_GUI"])
    else:
        app.exec()
    for timer in (heartbeat, user, poll):
        timer.stop()
    marks = {name: moment - (opened_at[0] or 0.0) for name, moment in marks.items()}
    rows = window.worklist_model.total_count
    if sampler is not None:
        sampler.stop()
        sampler.write(sample_stalls, origin=opened_at[0] or 0.0)
    scored = sum(row.score is not None for row in window.worklist_model.rows())
    window.close()  # stops the AI's child process (and waits for it)
    peak = peak_rss_mb()
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child reaped
    print(f"{studies:,} studies: first rows after {marks.get('first rows', float('nan')):.2f} s, indexed after "
          f"{marks.get('indexed', float('nan')):.1f} s; {rows:,} rows, {scored} scored in the {AI_PHASE_SECONDS} s "
          f"after; {step[0]} user actions")
    print(f"  the model loaded after {marks.get('model loaded', float('nan')):.1f} s, the first AI result after "
          f"{marks.get('first AI result', float('nan')):.1f} s")
    if before_open:
        print(f"  before the open: longest stall {max(before_open):.1f} ms over {len(before_open)} ticks; "
              f"the open came {(opened_at[0] or 0.0) - planned_open:.2f} s after it was due")
    for name, values in gaps.items():
        if values:
            print(f"  stall while {name}: max {max(values):.1f} ms, p95 {p95(values):.1f} ms, "
                  f"{sum(gap > STALL_GOAL_MS for gap in values)} of {len(values)} ticks > {STALL_GOAL_MS:.0f} ms")
    print("  late ticks (s after the open: ms): " + (", ".join(f"{when:.2f}: {gap:.0f} ({name})"
                                                             for when, gap, name in late) or "none"))
    print(f"  the tick after indexing ended (the session replaces the listed rows): {indexed_tick[0]:.1f} ms")
    print(f"  peak RSS {peak:.0f} MB; its largest child process (the AI model's) {child_peak:.0f} MB")
    when = (f"opened {open_after_s:g} s after the window was shown" if open_after_s else
            f"opened with the window, the review stack imported before it showed ({imported_s:.2f} s)")
    return [
        Figure(f"{studies:,}-study folder: first rows", marks.get("first rows", float("inf")), "s", FIRST_ROWS_GOAL_S,
               f"{when}; whole folder indexed after {marks.get('indexed', float('inf')):.1f} s"),
        Figure("  longest stall before the first rows", max(gaps["opening"] or [0.0]), "ms", None,
               "the opening: no list to scroll, sort or filter yet"),
        Figure("  longest stall while the worklist fills", max(gaps["filling"] or [0.0]), "ms", STALL_GOAL_MS,
               f"scrolling, sorting, filtering every 250 ms; p95 {p95(gaps['filling'] or [0.0]):.1f} ms; "
               f"{indexed_tick[0]:.0f} ms when indexing ended"),
        Figure("  longest stall while the AI scores", max(gaps["scoring"] or [0.0]), "ms", STALL_GOAL_MS,
               f"the same user, {AI_PHASE_SECONDS} s; {scored} cases scored; "
               f"p95 {p95(gaps['scoring'] or [0.0]):.1f} ms"),
        Figure("  longest stall after a sort or filter change", max(gaps["sorting/filtering"] or [0.0]), "ms",
               STALL_GOAL_MS, f"ticks within {AFTER_ACTION_S * 1000:.0f} ms of one, both phases; "
               f"p95 {p95(gaps['sorting/filtering'] or [0.0]):.1f} ms"),
        Figure("  peak memory (RSS) of the app", peak, "MB", None, f"{rows:,} rows in the worklist"),
        Figure("  peak memory (RSS) of the AI's child process", child_peak, "MB", None,
               "the model and its jobs (the largest child process; header readers are smaller)"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--open-after", type=float, default=0.0, metavar="SECONDS",
                        help="open the folder this long after the window is shown (default: at once)")
    parser.add_argument("--sample-stalls", type=Path, metavar="PATH",
                        help="write what the GUI thread ran during the late ticks (benchmarks/stall_sampler.py)")
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    studies = 1_000 if args.quick else args.studies
    with tempfile.TemporaryDirectory(prefix="pneumoviewer-large-") as scratch:
        root = Path(scratch)
        os.environ["XDG_DATA_HOME"] = str(root / "user")
        os.environ["XDG_CONFIG_HOME"] = str(root / "config")
        started = time.perf_counter()
        folder = make_distinct_copies(root / "studies", studies)
        print(f"made {studies:,} distinct DICOMs in {time.perf_counter() - started:.0f} s")
        figures = measure(folder, root / "sessions", studies, args.sample_stalls, args.open_after)
    return report(figures, args)


if __name__ == "__main__":
    sys.exit(main())
