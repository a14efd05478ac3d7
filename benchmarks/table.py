"""Figures as a table (plain text for the terminal, Markdown for docs/benchmarks.md) and the machine
they were measured on."""

from __future__ import annotations

import datetime
import os
import platform
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from benchmarks.common import Figure

Row = tuple[str, Figure]  # (benchmark name, figure)
HEADER = ("benchmark", "figure", "median", "goal", "", "note")


def format_number(value: float) -> str:
    """About three significant digits, thousands separated, never in exponent form."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_quantity(value: float, unit: str) -> str:
    return f"{format_number(value)}×" if unit == "x" else f"{format_number(value)} {unit}"


def verdict(figure: Figure) -> str:
    return {None: "", True: "met", False: "MISSED"}[figure.met]


def cells(benchmark: str, figure: Figure) -> tuple[str, ...]:
    goal = "—" if figure.goal is None else f"≤ {format_quantity(figure.goal, figure.unit)}"
    return benchmark, figure.name, format_quantity(figure.value, figure.unit), goal, verdict(figure), figure.note


def text_table(rows: Sequence[Row]) -> str:
    """Aligned columns; the benchmark column is left out when every row leaves it empty."""
    table = [HEADER, *(cells(benchmark, figure) for benchmark, figure in rows)]
    if not any(row[0] for row in table[1:]):
        table = [row[1:] for row in table]
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    right_aligned = {len(table[0]) - 4, len(table[0]) - 3}  # median and goal
    lines = []
    for row in table:
        padded = [value.rjust(width) if column in right_aligned else value.ljust(width)
                  for column, (value, width) in enumerate(zip(row, widths))]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    """Markdown collapses the indent of a detail row (a figure named "  ..."), so it gets an arrow instead."""
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|---:|---:|---|---|"]
    for benchmark, figure in rows:
        values = [value.replace("|", "\\|") for value in cells(benchmark, figure)]
        if values[1].startswith("  "):
            values[1] = "↳ " + values[1].strip()
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines)


def machine_description() -> list[tuple[str, str]]:
    """What the figures depend on: cores, CPU, memory, versions, date and how busy the machine was."""
    cpu_model = next((line.split(":", 1)[1].strip() for line in _read_lines("/proc/cpuinfo")
                      if line.startswith("model name")), platform.processor() or "unknown")
    memory_kib = next((int(line.split()[1]) for line in _read_lines("/proc/meminfo")
                       if line.startswith("MemTotal:")), 0)
    versions = ", ".join(f"{name} {_version(name)}" for name in ("torch", "onnxruntime", "numpy", "PySide6-Essentials"))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        ("date", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu_model}; nproc {len(os.sched_getaffinity(0))}"),
        ("RAM", f"{memory_kib / 1024**2:.1f} GiB"),
        ("Python", f"{platform.python_version()} ({platform.system()} {platform.release()})"),
        ("packages", versions),
        ("load average at start (1, 5, 15 min)", load),
        ("other processes busy at start (% of one core)", busy_processes() or "none"),
    ]


def busy_processes(interval: float = 1.0) -> str:
    """Other processes busy over the next `interval` seconds: the benchmarks share the machine with
    them, so their figures are slower than on an idle one."""
    before = cpu_ticks()
    time.sleep(interval)
    return busy_since(before, interval)


def busy_since(before: dict[int, tuple[str, int]], seconds: float, threshold: float = 10.0) -> str:
    """"name percent, ..." for the other processes that used more than `threshold` % of a core since
    `before` (a `cpu_ticks()` taken `seconds` ago), busiest first."""
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (name, ticks) in cpu_ticks().items():
        percent = 100 * (ticks - before.get(pid, (name, 0))[1]) / ticks_per_second / max(seconds, 1e-3)
        if percent >= threshold and pid != os.getpid():
            busy.append((percent, f"{name} {percent:.0f}"))
    return ", ".join(text for _, text in sorted(busy, reverse=True))


def cpu_ticks() -> dict[int, tuple[str, int]]:
    """pid -> (short command line, user + system CPU ticks so far), from Linux /proc (empty elsewhere)."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 0, utime 11, stime 12
        ticks[int(stat.parent.name)] = (_short_command(command), int(fields[11]) + int(fields[12]))
    return ticks


def _short_command(command: str) -> str:
    """`/work/main/.venv/bin/python3.11 .venv/bin/pneumoviewer train --labels ...` -> `pneumoviewer train`."""
    words = command.split()
    if "-c" in words[:3]:
        return "python -c ..."
    names = [Path(word).name for word in words[:4] if not word.startswith("-")]
    return " ".join([name for name in names if not name.startswith("python")][:2]) or "?"


def _read_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
