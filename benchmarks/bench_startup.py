"""Start-up time of the desktop app: from launch to a usable window, and what it spends it on.

    nice -n 10 .venv/bin/python benchmarks/bench_startup.py [--runs 3] [--quick] [--command CMD...]

1. In fresh processes, offscreen: import of pneumoviewer.ui.app, QApplication, import of the main
   window module, MainWindow(), show() until the first paint; and whether torch was loaded by then.
2. Under Xvfb (when Xvfb and xdotool are installed): launch the app as a desktop launcher would
   (default: this venv's `pneumoviewer-gui`) and time until its window is mapped and visible.
3. The ten slowest imports (`python -X importtime`) of the main window module.
Goal: window painted within 1.5 s. Prints medians; figures from a busy machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import Figure, add_runner_arguments, report

WINDOW_GOAL_SECONDS = 1.5

PHASES_PROBE = r"""
import json, os, sys, time
started = time.perf_counter()
marks = {}
def mark(name): marks[name] = time.perf_counter() - started
import pneumoviewer.ui.app as app_module; mark("import ui.app")
app = app_module.application(); mark("QApplication")
from pneumoviewer.ui.main_window import MainWindow; mark("import main_window")
from PySide6.QtCore import QEvent, QObject
class FirstPaint(QObject):
    painted = False
    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint:
            self.painted = True
        return False
window = MainWindow(); mark("MainWindow()")
probe = FirstPaint(); window.installEventFilter(probe)
window.resize(1600, 1000); window.show()
while not probe.painted:
    app.processEvents()
mark("first paint")
marks["torch loaded"] = "torch" in sys.modules
print(json.dumps(marks))
"""


def offscreen_phases(runs: int) -> dict[str, object]:
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    samples = []
    for _ in range(runs):
        output = subprocess.run([sys.executable, "-c", PHASES_PROBE], env=environment, check=True,
                                capture_output=True, text=True, timeout=120).stdout
        samples.append(json.loads(output.strip().splitlines()[-1]))
    phases = {name: statistics.median(sample[name] for sample in samples)
              for name in samples[0] if name != "torch loaded"}
    return {**phases, "torch loaded": any(sample["torch loaded"] for sample in samples)}


def xvfb_time_to_window(command: list[str], runs: int) -> list[float]:
    display = ":97"
    # -noreset: by default the server resets when its last client leaves, and a launch that connects
    # during that reset fails ("could not connect to display"), which looked like a missing window.
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp", "-noreset"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    environment = {key: value for key, value in os.environ.items() if key != "QT_QPA_PLATFORM"}
    environment.update(DISPLAY=display, HOME=tempfile.mkdtemp(prefix="pneumoviewer-bench-home-"))
    seconds = []
    try:
        time.sleep(1.0)
        for _ in range(runs):
            started = time.perf_counter()
            app = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                while time.perf_counter() - started < 60:
                    found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "PneumoViewer"],
                                           check=False, env=environment, capture_output=True, text=True)
                    if found.stdout.strip():
                        seconds.append(time.perf_counter() - started)
                        break
                    time.sleep(0.02)
            finally:
                app.terminate()
                app.wait(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return seconds


def slowest_imports(module: str, count: int = 10) -> list[tuple[float, str]]:
    stderr = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                            env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
                            capture_output=True, text=True, check=True).stderr
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            rows.append((int(cumulative) / 1e6, name.rstrip()))
    return sorted(rows, reverse=True)[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="launches to take the median of (default 3, quick 1)")
    parser.add_argument("--command", nargs="+", help="what a launcher runs (default: this venv's pneumoviewer-gui)")
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    command = args.command or [str(Path(sys.executable).parent / "pneumoviewer-gui")]
    figures = []

    print(f"Offscreen, fresh process, median of {runs} (seconds since the interpreter started its script):")
    phases = offscreen_phases(runs)
    for name, value in phases.items():
        print(f"  {name:<20}{value:.2f}" if isinstance(value, float) else f"  {name:<20}{value}")
    figures.append(Figure("start-up to the first paint of the window, offscreen", phases["first paint"], "s",
                          WINDOW_GOAL_SECONDS, f"fresh process, median of {runs}; "
                          f"torch {'already imported (it should load after the first paint)' if phases['torch loaded'] else 'not imported yet'} by then"))
    if shutil.which("Xvfb") and shutil.which("xdotool"):
        seconds = xvfb_time_to_window(command, runs)
        shown = ", ".join(f"{value:.2f}" for value in seconds) or "no window within 60 s"
        print(f"Xvfb, launch -> visible window ({' '.join(command)}): {shown} s")
        if seconds:
            figures.append(Figure("launch to a visible window (Xvfb, as a desktop launcher)",
                                  statistics.median(seconds), "s", WINDOW_GOAL_SECONDS,
                                  f"{Path(command[0]).name}, median of {len(seconds)}"))
    else:
        print("Xvfb or xdotool not installed: skipping the launch-to-window measurement")
    if not args.quick:
        print("Slowest imports of pneumoviewer.ui.main_window (cumulative seconds):")
        for seconds_taken, name in slowest_imports("pneumoviewer.ui.main_window"):
            print(f"  {seconds_taken:6.2f}  {name.strip()}")
    return report(figures, args)


if __name__ == "__main__":
    sys.exit(main())
