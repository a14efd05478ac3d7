"""The benchmark runner cannot silently rot: its table, its protocol with the scripts, and a real quick run
of the cheapest benchmark. Timings are printed by the benchmarks, never asserted here."""

from __future__ import annotations

import json
import py_compile
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def benchmarks(monkeypatch: pytest.MonkeyPatch):
    """The `benchmarks` package (a folder at the repo root, not installed)."""
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    import benchmarks.__main__ as runner

    return runner


def test_table_shows_each_figure_with_its_goal_and_verdict(benchmarks) -> None:
    from benchmarks.common import Figure
    from benchmarks.table import markdown_table, text_table

    rows = [
        ("model", Figure("model latency per image, 512² input, no TTA", 0.1364, "s", 0.4, "ms: network 118")),
        ("ui", Figure("longest event-loop stall", 61.25, "ms", 50.0, "5 ms heartbeat")),
        ("core", Figure("  RLE speed-up over a loop", 178.6, "x", None, "same run | note")),
        ("core", Figure("header indexing", 1421.3, "files/s")),
    ]
    text = text_table(rows).splitlines()
    assert text[0].split()[:4] == ["benchmark", "figure", "median", "goal"]
    assert "0.136 s" in text[1] and "≤ 0.400 s" in text[1] and "met" in text[1] and "ms: network 118" in text[1]
    assert "61.2 ms" in text[2] and "≤ 50.0 ms" in text[2] and "MISSED" in text[2]
    assert "179×" in text[3] and "—" in text[3]
    assert "1,421 files/s" in text[4]

    markdown = markdown_table(rows).splitlines()
    assert markdown[0] == "| benchmark | figure | median | goal |  | note |"
    assert len(markdown) == 2 + len(rows)
    assert "same run \\| note" in markdown[4]  # a pipe in a note does not split the cell
    assert "| ↳ RLE speed-up over a loop |" in markdown[4]  # a detail row keeps looking like one
    assert all(line.count(" | ") == 5 for line in markdown[2:])


def test_runner_collects_figures_and_reports_a_failing_script(benchmarks, tmp_path: Path) -> None:
    good = tmp_path / "bench_good.py"
    good.write_text(textwrap.dedent("""
        import json, sys
        out = sys.argv[sys.argv.index("--figures-json") + 1]
        assert "--quick" in sys.argv and sys.argv[sys.argv.index("--model") + 1].endswith("weights.safetensors")
        json.dump([{"name": "stroke", "value": 3.0, "unit": "ms", "goal": 16.0, "note": ""}], open(out, "w"))
    """))
    bad = tmp_path / "bench_bad.py"
    bad.write_text("print('loading the data')\nraise SystemExit('data not found')\n")

    figures, seconds, failure = benchmarks.run_script(good, quick=True, verbose=False,
                                                      model=tmp_path / "weights.safetensors")
    assert failure is None and seconds > 0
    assert [(figure.name, figure.value, figure.met) for figure in figures] == [("stroke", 3.0, True)]

    figures, _, failure = benchmarks.run_script(bad, quick=True, verbose=False)
    assert figures == []
    assert "exit status 1" in failure and "loading the data" in failure


def test_every_benchmark_script_compiles_and_is_discovered(benchmarks) -> None:
    scripts = benchmarks.discover()
    assert {"core", "memory", "model", "review", "startup", "ui"} <= set(scripts)
    for script in scripts.values():
        py_compile.compile(str(script), doraise=True)


@pytest.mark.slow
def test_quick_run_of_the_core_benchmark_writes_the_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    finished = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "core", "--json", str(out)],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "RLE encode+decode 1024²" in finished.stdout and "CPU:" in finished.stdout
    report = json.loads(out.read_text())
    assert report["failures"] == [] and report["mode"].startswith("--quick")
    names = [figure["name"] for figure in report["figures"]]
    assert any("header indexing" in name for name in names)
    assert all(figure["benchmark"] == "core" and figure["value"] > 0 for figure in report["figures"])


def test_a_missed_goal_is_a_finding_and_only_a_missing_figure_fails_the_run(
    benchmarks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = tmp_path / "bench_slow.py"
    slow.write_text(textwrap.dedent("""
        import json, sys
        out = sys.argv[sys.argv.index("--figures-json") + 1]
        json.dump([{"name": "first paint", "value": 2.5, "unit": "s", "goal": 1.5, "note": ""}], open(out, "w"))
    """))
    hanging = tmp_path / "bench_hanging.py"
    hanging.write_text("import time\ntime.sleep(60)\n")
    monkeypatch.setattr(benchmarks, "TIMEOUT_SECONDS", {False: 5, True: 5})
    monkeypatch.setattr(benchmarks, "discover", lambda: {"slow": slow, "hanging": hanging})
    monkeypatch.setattr(benchmarks, "machine_description", lambda: [("CPU", "test")])

    assert benchmarks.main(["--quick", "--only", "slow"]) == 0
    output = capsys.readouterr().out
    assert "MISSED" in output and "1 figure(s) missed their goal: first paint" in output and "FAILED" not in output
    assert benchmarks.main(["--quick"]) == 1
    assert "FAILED bench_hanging.py: no result within 5 s" in capsys.readouterr().out
