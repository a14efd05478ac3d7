"""Entry script of the PyInstaller bundle: the same `pneumoviewer` command line as the installed package."""

from __future__ import annotations

import multiprocessing
import sys

from pneumoviewer.cli import main

if __name__ == "__main__":
    # A frozen app re-executes itself for multiprocessing children; this lets them start as children.
    multiprocessing.freeze_support()
    sys.exit(main())
