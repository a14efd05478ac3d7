"""The one entry point: `pneumoviewer` opens the GUI; subcommands do the same work headless.

Each subcommand is a `_cmd_<name>(args) -> int` handler registered in `build_parser`.
Heavy imports (torch, Qt) happen inside handlers so `--help` and `--version` stay instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pneumoviewer import __version__


def _cmd_gui(args: argparse.Namespace) -> int:
    from pneumoviewer.ui.app import run_app

    return run_app(paths=args.paths, demo=args.demo)


# Each entry adds one subparser (with `handler=`) to the subparsers action it is given.
_SUBCOMMANDS: list = []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pneumoviewer",
        description="Pneumothorax review on chest X-rays. With no subcommand, opens the desktop app "
        "(optionally on PATH: a folder of DICOMs, or files).",
    )
    parser.add_argument("--version", action="version", version=f"pneumoviewer {__version__}")
    parser.add_argument("--demo", action="store_true", help="open the bundled demo studies")
    parser.set_defaults(handler=_cmd_gui, paths=[])
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _SUBCOMMANDS:
        register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    subcommands = _subcommand_names(parser)
    # `pneumoviewer PATH...` opens the GUI on those paths; anything else is a subcommand.
    if argv and not argv[0].startswith("-") and argv[0] not in subcommands:
        args = parser.parse_args([a for a in argv if a.startswith("-")])
        args.paths = [a for a in argv if not a.startswith("-")]
    else:
        args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


def gui_main() -> int:
    """Entry for desktop launchers (gui-scripts): no console, same behaviour."""
    return main()


def _subcommand_names(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


if __name__ == "__main__":
    sys.exit(main())
