"""Render the worklist of a 10,000-study folder while the AI works through it: `large-worklist.png`.

    Xvfb :99 -screen 0 1680x1050x24 &
    DISPLAY=:99 .venv/bin/python docs/screenshots/take_large_folder_screenshot.py [--folder DIR] [--studies 10000]

Without --folder it makes the folder as benchmarks/bench_large_folder.py does (distinct copies of the
SIIM DICOMs). The real window opens it with the bundled model, waits until it is indexed and a few
cases are scored, marks two cases as a reader would, and saves the window.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]  # run as a script: the repo root (`benchmarks`) and this folder

from take_screenshots import settle, wait_until  # noqa: E402

from benchmarks.common import make_distinct_copies  # noqa: E402
from pneumoviewer.ui.app import application  # noqa: E402

SCORED = 12


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="a folder of studies (default: make --studies copies)")
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNG (default: beside this script)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="pneumoviewer-large-shot-"))
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):  # the default layout, not this machine's last one
        os.environ[name] = str(scratch / name.lower())
    folder = args.folder or make_distinct_copies(scratch / "studies", args.studies)
    application()
    from pneumoviewer.ui.main_window import MainWindow

    window = MainWindow(data_dir=scratch / "sessions")
    window.setProperty("quiet", True)
    window.resize(1600, 980)
    window.show()
    window.controller.open_paths([folder])
    model = window.worklist_model
    wait_until(lambda: window.controller.session is not None, timeout_s=600)
    wait_until(lambda: sum(row.score is not None for row in model.rows()) >= SCORED, timeout_s=600)
    for status in ("accepted", "rejected"):
        window.controller.step_case(+1)
        window.controller.set_status(status)
    model.resort()
    settle(1500)
    path = args.out / "large-worklist.png"
    window.grab().save(str(path))
    print(f"{model.total_count:,} rows; wrote {path}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
