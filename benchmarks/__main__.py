"""Run every benchmark script in benchmarks/ and print one table of headline figures with their goals.

    cd <repo root> && nice -n 10 .venv/bin/python -m benchmarks [--quick] [--only core model ...] [--model WEIGHTS]
                                                                [--markdown] [--json OUT]

Each `bench_*.py` runs in a fresh process of this interpreter (`--figures-json` hands its figures
back), for three reasons: the UI stall must include the AI worker's first torch import, each
script's peak memory must be its own, and one crashing benchmark must not take the others down.
A script's own detailed output is shown with --verbose, or when it fails.
Exit status: 0 when every script ran and handed its figures back, 1 when any failed or timed out (a missed
goal, or a quick run over its 2-minute budget on a busy machine, is a printed finding, not a failure).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.common import Figure
from benchmarks.table import Row, machine_description, markdown_table, text_table

HERE = Path(__file__).resolve().parent
TIMEOUT_SECONDS = {False: 1200, True: 180}  # per script, full / --quick
# Minutes each even when quick (a Dask cluster, 1,000 studies in the window, a fine-tuning run, the window
# while one trains, an Orthanc server), or telling only at full size (the end of a 10,000-study opening): a --quick
# run leaves them out and says so; `--only NAME --quick` still runs one.
FULL_RUN_ONLY = ("archive", "finetune", "large_folder", "opening_end", "pacs", "ui_finetune")
QUICK_BUDGET_SECONDS = 120  # the whole --quick run, on the 2-core machine of docs/benchmarks.md


def discover() -> dict[str, Path]:
    """`bench_core.py` -> "core", in name order."""
    return {path.stem.removeprefix("bench_"): path for path in sorted(HERE.glob("bench_*.py"))}


def run_script(
    script: Path, quick: bool, verbose: bool, model: Path | None = None
) -> tuple[list[Figure], float, str | None]:
    """The script's figures, its wall time and, if it failed, why (its output's tail)."""
    with tempfile.TemporaryDirectory(prefix="pneumoviewer-bench-") as scratch:
        figures_file = Path(scratch) / "figures.json"
        command = [sys.executable, str(script), "--figures-json", str(figures_file), *(["--quick"] if quick else []),
                   *(["--model", str(model.resolve())] if model else [])]
        environment = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
        started = time.perf_counter()
        try:
            finished = subprocess.run(command, cwd=HERE.parent, env=environment, timeout=TIMEOUT_SECONDS[quick],
                                      check=False, stdout=None if verbose else subprocess.PIPE,
                                      stderr=None if verbose else subprocess.STDOUT, text=True)
        except subprocess.TimeoutExpired:
            return [], time.perf_counter() - started, f"no result within {TIMEOUT_SECONDS[quick]} s"
        seconds = time.perf_counter() - started
        if finished.returncode != 0 or not figures_file.exists():
            tail = "\n".join((finished.stdout or "").splitlines()[-15:])
            return [], seconds, f"exit status {finished.returncode}" + (f"; last output:\n{tail}" if tail else "")
        return [Figure.from_dict(values) for values in json.loads(figures_file.read_text())], seconds, None


def main(argv: list[str] | None = None) -> int:
    scripts = discover()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run for CI (under 2 minutes; figures are rough)")
    parser.add_argument("--only", nargs="+", choices=sorted(scripts), metavar="NAME",
                        help=f"run only these ({', '.join(scripts)})")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (docs/benchmarks.md)")
    parser.add_argument("--verbose", action="store_true", help="show each script's own detailed output")
    parser.add_argument("--model", type=Path, metavar="WEIGHTS",
                        help="checkpoint to time (default: the bundled model, else random weights of its architecture)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the machine, figures and failures as JSON")
    args = parser.parse_args(argv)

    machine = machine_description()
    rows: list[Row] = []
    failures: list[str] = []
    durations: dict[str, float] = {}
    started = time.perf_counter()
    chosen = args.only or [name for name in scripts if not (args.quick and name in FULL_RUN_ONLY)]
    if args.quick and not args.only:
        print(f"benchmarks: --quick leaves out {', '.join(FULL_RUN_ONLY)} (full run only)", file=sys.stderr)
    for name in chosen:
        print(f"benchmarks: running {scripts[name].name}{' --quick' if args.quick else ''} ...", file=sys.stderr,
              flush=True)
        figures, seconds, failure = run_script(scripts[name], args.quick, args.verbose, args.model)
        durations[name] = seconds
        rows += [(name, figure) for figure in figures]
        if failure:
            failures.append(f"{scripts[name].name}: {failure}")
            print(f"benchmarks: {scripts[name].name} failed: {failure}", file=sys.stderr)

    total = time.perf_counter() - started
    machine.append(("load average at the end (1, 5, 15 min)", ", ".join(f"{value:.2f}" for value in os.getloadavg())))
    print("\n".join(f"{key}: {value}" for key, value in machine))
    mode = "--quick (rough figures)" if args.quick else "full"
    print(f"mode: {mode}; wall time {total:.0f} s: {', '.join(f'{name} {s:.0f} s' for name, s in durations.items())}")
    print()
    print(markdown_table(rows) if args.markdown else text_table(rows))
    missed = [figure.name for _, figure in rows if figure.met is False]
    if missed:
        print(f"\n{len(missed)} figure(s) missed their goal: {'; '.join(missed)}")
    if args.quick and not args.only and total > QUICK_BUDGET_SECONDS:
        print(f"\nThe quick run took {total:.0f} s, over its {QUICK_BUDGET_SECONDS} s budget: see the load average "
              "and the busy processes above")
    for failure in failures:
        print(f"\nFAILED {failure}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "machine": dict(machine), "mode": mode, "wall_seconds": durations, "total_seconds": total,
            "figures": [{"benchmark": name, **asdict(figure), "met": figure.met} for name, figure in rows],
            "failures": failures,
        }, indent=1, ensure_ascii=False))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
