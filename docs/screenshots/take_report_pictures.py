"""Render the pictures of docs/reports.md (and the README's case report) from the real app and commands.

    Xvfb :99 -screen 0 1680x1050x24 &
    DISPLAY=:99 .venv/bin/python docs/screenshots/take_report_pictures.py [--out DIR]

On the demo studies with the bundled model: the window with lesion boxes and labels
(`lesion-labels.png`), the Statistics dock filtered to AP films (`statistics.png`), Help → About the
AI model (`model-card.png`), page 1 of `pneumoviewer report` rendered by poppler's pdftoppm
(`case-report.png`), and `evaluate --report` rendered by headless Chromium (`evaluation-report.png`).
User data (autosave, preferences) go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs (default: beside this script)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="pneumoviewer-report-shots-"))
    os.environ["XDG_DATA_HOME"] = str(scratch / "data")
    os.environ["XDG_CONFIG_HOME"] = str(scratch / "config")

    from take_screenshots import settle, wait_until  # docs/screenshots/take_screenshots.py

    from pneumoviewer.cli import main as cli
    from pneumoviewer.paths import demo_dir
    from pneumoviewer.ui.app import application
    from pneumoviewer.ui.dialogs import ModelCardDialog
    from pneumoviewer.ui.main_window import MainWindow

    application()
    window = MainWindow(data_dir=scratch / "sessions")
    window.resize(1600, 980)
    window.show()
    window.controller.open_paths([demo_dir()])
    wait_until(lambda: window.controller.session is not None)
    wait_until(lambda: all(row.score is not None or row.error for row in window.worklist_model.rows()))
    imported: list = []
    window.controller.sigTaskFinished.connect(imported.append)
    window.controller.import_csv(demo_dir() / "ground-truth-rle.csv")
    wait_until(lambda: bool(imported))
    session = window.controller.session
    shown = max(session.cases, key=lambda case: (bool(case.ai_lesions() and case.ai_lesions().area_px),
                                                 case.lesions().count, case.ai_score or 0.0))
    window.controller.reader_acted()
    window.controller.show_case(shown.image_id)
    wait_until(lambda: window.case_view.image_id_on_canvas == shown.image_id)
    settle()
    window.grab().save(str(args.out / "lesion-labels.png"))
    print(f"lesion-labels.png: {shown.display_id}, {len(window.case_view.lesions)} lesion(s)")

    window.actions_by_name["show_statistics"].setChecked(True)
    wait_until(lambda: window.statistics.stats is not None)
    view = window.statistics.stats.plot("view")
    window.statistics.filter_to(view, max(view.bars, key=lambda bar: bar.count))
    settle()
    window.statistics.grab().save(str(args.out / "statistics.png"))
    print("statistics.png")
    dialog = ModelCardDialog(window.controller.model_queue.model_card, None, window)
    dialog.show()
    settle()
    dialog.grab().save(str(args.out / "model-card.png"))
    dialog.close()
    print("model-card.png")
    window.close()

    reports = scratch / "reports"
    cli(["report", str(demo_dir()), "--out", str(reports)])
    subprocess.run(["pdftoppm", "-r", "80", "-png", "-f", "1", "-l", "1", "-singlefile",
                    str(reports / "case-reports.pdf"), str(args.out / "case-report")], check=True)
    print("case-report.png")
    cli(["evaluate", "--labels", str(demo_dir() / "ground-truth-rle.csv"), "--images", str(demo_dir()),
         "--report", str(reports)])
    browser = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    if browser is None:
        print("no headless Chromium: evaluation-report.png not made", file=sys.stderr)
        return 1
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1100,2200", f"--screenshot={args.out / 'evaluation-report.png'}",
                    (reports / "evaluation-report.html").as_uri()], check=True, capture_output=True, timeout=120)
    print("evaluation-report.png")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
