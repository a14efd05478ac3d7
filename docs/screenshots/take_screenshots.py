"""Render the README screenshots from the real window on the demo studies.

    Xvfb :99 -screen 0 1680x1050x24 &
    DISPLAY=:99 .venv/bin/python docs/screenshots/take_screenshots.py [--model PATH] [--size 1600x980] [--out DIR]

Opens the demo folder with the bundled model (or --model), imports the demo's reference
annotations as the editable (green) mask, picks the positive case the AI scores highest,
shows the AI contour (red) and the Grad-CAM heatmap, and saves `main-window.png` beside this file.
A second shot, `worklist-review.png`, shows the worklist after a few cases were reviewed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QEventLoop, QTimer

from pneumoviewer.paths import demo_dir
from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.ui.app import application

HERE = Path(__file__).resolve().parent


def wait_until(condition, timeout_s: float = 120.0) -> None:
    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: condition() and loop.quit())
    poll.start(50)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    loop.exec()
    poll.stop()
    if not condition():
        raise TimeoutError("the window did not get there in time")


def settle(ms: int = 600) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a checkpoint instead of the bundled model")
    parser.add_argument("--size", default="1600x980", help="window size WIDTHxHEIGHT (default 1600x980)")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs (default: beside this script)")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    application()
    from pneumoviewer.ui.main_window import MainWindow

    kwargs = {"data_dir": Path(tempfile.mkdtemp(prefix="pneumoviewer-shots-"))}
    if args.model is not None:
        from pneumoviewer.model.inference import Predictor

        kwargs["predictor_factory"] = lambda: Predictor.cached(args.model)
    window = MainWindow(**kwargs)
    window.resize(width, height)
    window.show()
    window.controller.open_paths([demo_dir()])
    wait_until(lambda: window.controller.session is not None)
    wait_until(lambda: all(row.score is not None or row.error for row in window.worklist_model.rows()))
    imported = []
    window.controller.sigTaskFinished.connect(imported.append)
    window.controller.import_csv(demo_dir() / "ground-truth-rle.csv")
    wait_until(lambda: bool(imported))  # every mask, not just the first (the import runs in a worker)
    positives = [case for case in window.controller.session.cases if case.has_mask_pixels]
    # A true positive the AI marks, highest score first (else the best-scored reference positive).
    shown = max(positives, key=lambda case: (bool(case.ai_lesions() and case.ai_lesions().area_px),
                                             case.ai_score or 0.0, case.lesions().area_px))
    window.worklist_model.resort()
    window.controller.reader_acted()  # as a click would: the screen stops following the top of the list
    window.controller.show_case(shown.image_id)
    wait_until(lambda: window.case_view.image_id_on_canvas == shown.image_id)
    window.actions_by_name["toggle_heatmap"].setChecked(True)
    wait_until(lambda: window.canvas.heatmap_item.image is not None)
    settle()
    window.grab().save(str(args.out / "main-window.png"))
    ai = shown.ai_lesions()
    print(f"main-window.png: {shown.display_id} (AI score {shown.ai_score:.3f}, AI mask {ai.area_px if ai else 0} px)")

    for case, status in zip(window.controller.session.worklist()[:3], (ReviewStatus.ACCEPTED,
            ReviewStatus.CORRECTED, ReviewStatus.REJECTED), strict=False):
        window.controller.session.set_status(case.image_id, status)
    window.actions_by_name["toggle_heatmap"].setChecked(False)
    settle()
    window.grab().save(str(args.out / "worklist-review.png"))
    print("worklist-review.png")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
