"""The default command: `pneumoviewer [PATH...]` opens the desktop app (on a folder or files)."""

from __future__ import annotations

import argparse


def register_default(parser: argparse.ArgumentParser) -> None:
    """The GUI is what runs without a subcommand, so its options live on the top-level parser."""
    parser.add_argument("--demo", action="store_true", help="open the bundled demo studies")
    parser.set_defaults(handler=run, paths=[])


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.ui.app import run_app

    return run_app(paths=args.paths, demo=args.demo)
