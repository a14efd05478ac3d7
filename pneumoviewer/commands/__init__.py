"""The CLI's commands, one module each, and the one way a command reports a problem.

Every command module has `register(subparsers)`, which adds its subparser with `handler=run`,
and `run(args) -> int`, which does the work and returns the exit status. At the top a module
imports only the standard library, this package and `pneumoviewer.errors`: `pneumoviewer --help`
builds every parser, so the heavy imports (numpy, torch, Qt) wait inside `run` (tests/test_rooms.py
checks). The GUI is the default command (`gui.register_default`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from pneumoviewer.errors import FileProblem

if TYPE_CHECKING:
    import argparse

    from pneumoviewer.progress import ProgressBar

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def report(problem: FileProblem | str, progress: ProgressBar | None = None) -> None:
    """`pneumoviewer: <file>: <reason>` (or `pneumoviewer: <message>`) on stderr.

    With a running progress bar (`pneumoviewer.progress.progress_bar`), the line is written above it
    instead of through it.
    """
    message = f"pneumoviewer: {problem}"
    if progress is not None:
        progress.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr)


def fail(problem: FileProblem | str, progress: ProgressBar | None = None, status: int = 1) -> int:
    """Report the problem that ends the command; returns the exit status (2 = a usage error)."""
    report(problem, progress)
    return status
