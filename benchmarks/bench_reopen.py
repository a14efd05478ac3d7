"""Reopening a scored folder: the 1,074-image SIIM folder, every image predicted before, opened again.

    nice -n 10 .venv/bin/python benchmarks/bench_reopen.py [--quick]

The first opening's AI results are stored in the session store under the bundled model's fingerprint
(here written directly, one small lesion on a quarter of the images, since predicting 1,074 images
first would take minutes); then the review controller the window uses opens the folder with the
bundled model, as a reader reopening it does. Measured: from the open request to the sorted worklist
(the session opened, stored results applied), and how many images the network ran on once the model
had loaded and the queue was idle (goal 0). Goal: sorted worklist within 2 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import DATA, Figure, add_runner_arguments, report

REOPEN_GOAL_SECONDS = 2.0
FOLDER = DATA / "siim"


class StoredResult:
    """What the session stores of a prediction: score, final mask and the model's call."""

    def __init__(self, score: float, mask: np.ndarray, positive: bool) -> None:
        self.score, self.mask, self.positive = score, mask, positive


def score_folder_once(data_dir: Path, model_key: str) -> int:
    """Open the folder as the app does and store a result for every image; returns the image count."""
    from pneumoviewer.review.opening import open_studies

    session = open_studies([FOLDER], data_dir).session
    rng = np.random.default_rng(0)
    for case in session.cases:
        mask = np.zeros(case.shape, dtype=bool)
        positive = bool(rng.random() < 0.25)
        if positive:
            row, col = rng.integers(100, 800, 2)
            mask[row:row + 60, col:col + 40] = True
        session.apply_prediction(case.image_id, StoredResult(float(rng.random()), mask, positive), model_key)
    count = len(session)
    session.close()
    return count


def reopen(data_dir: Path) -> tuple[float, int, int]:
    """(seconds to the sorted worklist, rows listed, network runs once the AI was idle)."""
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    from pneumoviewer.ui.app import application
    from pneumoviewer.ui.controller import ReviewController

    application()
    controller = ReviewController(data_dir=data_dir)
    runs: list[str] = []
    controller.model_queue.sigPredicted.connect(lambda image_id, _finding: runs.append(image_id))
    loop = QEventLoop()
    opened_at: list[float] = []
    controller.sigSessionOpened.connect(lambda: (opened_at.append(time.perf_counter()), loop.quit()))
    controller.warm_up()
    started = time.perf_counter()
    controller.open_folder(FOLDER)
    QTimer.singleShot(60_000, loop.quit)
    loop.exec()
    rows = controller.worklist_model.rowCount()
    deadline = time.perf_counter() + 120
    # Wait until the model has loaded and its queue has nothing left (a reopen should give it nothing to do).
    while (controller.model_queue.model_card is None or controller.model_queue.running) and \
            controller.model_queue.model_error is None and time.perf_counter() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.05)
    controller.close()
    return (opened_at[0] - started) if opened_at else float("inf"), rows, len(runs)


def run(quick: bool) -> list[Figure]:
    from pneumoviewer.model.identity import model_fingerprint
    from pneumoviewer.paths import default_model_path

    with tempfile.TemporaryDirectory(prefix="pneumoviewer-reopen-") as scratch:
        data_dir = Path(scratch)
        os.environ["XDG_DATA_HOME"] = str(data_dir / "user")  # the window preferences, away from the user's
        started = time.perf_counter()
        count = score_folder_once(data_dir, model_fingerprint(default_model_path()))
        print(f"Stored results for {count:,} images in {time.perf_counter() - started:.1f} s")
        seconds, rows, runs = reopen(data_dir)
    print(f"Reopen: sorted worklist of {rows:,} rows after {seconds:.2f} s; network runs: {runs}")
    return [Figure("reopen a scored 1,074-image folder: sorted worklist", seconds, "s", REOPEN_GOAL_SECONDS,
                   f"{rows:,} rows, stored AI results reused"),
            Figure("reopen a scored folder: network runs", float(runs), "images", 0.0,
                   "after the model loaded and its queue was idle")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    return report(run(args.quick), args)


if __name__ == "__main__":
    sys.exit(main())
