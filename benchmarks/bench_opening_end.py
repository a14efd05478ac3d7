"""The end of a large folder's opening beside a painting worklist: the window's stall with paced loops and without.

    nice -n 10 .venv/bin/python benchmarks/bench_opening_end.py [--studies 10000] [--repeats 4] [--quick]

When a folder is indexed, a worker thread saves its header index, builds the session's cases and lists the
AI's jobs (`review.opening._session`, `ui.tasks.open_for_review`): a few hundred milliseconds of Python for
10,000 studies, while the GUI thread paints the worklist and waits for the GIL at each call into Python.
Here the real worklist table (offscreen, 10,000 listed rows) scrolls on a 5 ms heartbeat while a thread
runs that same end of an opening, in turns: with the app's pacing (`pneumoviewer.pacing`), with its loops
unpaced and collections allowed (as before), and with the thread idle. Measured per turn: the longest
heartbeat stall and the thread's time. The turns alternate, so the ratio holds on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import Figure, add_runner_arguments, make_distinct_copies, report

HEARTBEAT_MS = 5
STALL_GOAL_MS = 50.0
MODES = ("paced", "unpaced", "idle")


def measure(folder: Path, repeats: int) -> list[Figure]:
    import gc

    from PySide6.QtCore import QElapsedTimer, QTimer

    from pneumoviewer import pacing
    from pneumoviewer.io.folder_scan import scan_folder
    from pneumoviewer.io.header_index import HeaderIndex
    from pneumoviewer.review import opening
    from pneumoviewer.review.autosave import SessionStore
    from pneumoviewer.ui.ai_bridge import model_job
    from pneumoviewer.ui.app import application
    from pneumoviewer.ui.findings import Findings
    from pneumoviewer.ui.model_runner import JobKind
    from pneumoviewer.ui.worklist import WorklistModel
    from pneumoviewer.ui.worklist_table import WorklistTable

    app = application()
    index = HeaderIndex()
    headers = scan_folder(folder, index=index).images
    model = WorklistModel()
    table = WorklistTable(model)
    table.resize(1600, 1000)
    table.show()
    model.append_rows([Findings.listed_row(header, f"Case {number:05d}") for number, header in enumerate(headers, 1)])
    gc.collect()
    gc.freeze()  # as the app's window does once its rows are listed (ui/long_lived.py)
    paced_work_s = pacing.WORK_S

    def end_of_opening(mode: str) -> None:
        if mode == "idle":
            time.sleep(0.25)
            return
        pacing.WORK_S = paced_work_s if mode == "paced" else float("inf")  # inf: `paced` never pauses
        data = Path(tempfile.mkdtemp(prefix="data-", dir=folder.parent))
        store = SessionStore(folder, data)
        index._known = {}  # so the index counts as changed and is saved, as at a folder's first opening
        if mode == "paced":  # what the app runs
            session = opening._session(store, index, headers, data)
            with pacing.garbage_collection_paused():
                [model_job(JobKind.PREDICT, case) for case in pacing.paced(session.worklist())]
        else:
            opening._keep(index, store.headers_path)
            session = opening.ReviewSession.from_metadata(folder, headers, data)
            [model_job(JobKind.PREDICT, case) for case in session.worklist()]

    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    gaps: list[float] = []
    clock = QElapsedTimer()
    scrollbar = table.verticalScrollBar()

    def beat() -> None:
        gaps.append(max(clock.nsecsElapsed() / 1e6 - HEARTBEAT_MS, 0.0))
        clock.restart()
        scrollbar.setValue((scrollbar.value() + 7) % max(scrollbar.maximum(), 1))  # a repaint every tick

    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(beat)
    turns = [mode for _ in range(repeats) for mode in MODES]

    def next_turn() -> None:
        if not turns:
            app.quit()
            return
        mode = turns.pop(0)
        gaps.clear()
        spent: list[float] = []
        thread = threading.Thread(target=lambda: spent.append(_seconds(end_of_opening, mode)))
        thread.start()

        def check() -> None:
            if thread.is_alive():
                QTimer.singleShot(20, check)
                return
            results[mode].append((max(gaps, default=0.0), spent[0]))
            QTimer.singleShot(300, next_turn)

        QTimer.singleShot(20, check)

    clock.start()
    heartbeat.start()
    QTimer.singleShot(500, next_turn)
    app.exec()
    heartbeat.stop()
    pacing.WORK_S = paced_work_s
    for mode, runs in results.items():
        print(f"{mode:>8}: longest stall {', '.join(f'{stall:.0f}' for stall, _ in runs)} ms; "
              f"the thread's time {', '.join(f'{seconds:.2f}' for _, seconds in runs)} s")

    def median(mode: str, column: int) -> float:
        return statistics.median(run[column] for run in results[mode])

    studies = len(headers)
    return [
        Figure(f"end of a {studies:,}-study opening: longest stall, paced", median("paced", 0), "ms", STALL_GOAL_MS,
               f"median of {repeats}; the thread took {median('paced', 1):.2f} s"),
        Figure("  the same, unpaced (loops and collections as before)", median("unpaced", 0), "ms", None,
               f"median of {repeats}; the thread took {median('unpaced', 1):.2f} s"),
        Figure("  the same, the thread idle (the painting alone)", median("idle", 0), "ms", None,
               f"median of {repeats}"),
    ]


def _seconds(action, *args) -> float:
    started = time.perf_counter()
    action(*args)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=4)
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    studies, repeats = (1_000, 2) if args.quick else (args.studies, args.repeats)
    with tempfile.TemporaryDirectory(prefix="pneumoviewer-opening-end-") as scratch:
        folder = make_distinct_copies(Path(scratch) / "studies", studies)
        figures = measure(folder, repeats)
    return report(figures, args)


if __name__ == "__main__":
    sys.exit(main())
