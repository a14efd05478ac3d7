"""The one entry point: `pneumoviewer` opens the GUI; subcommands do the same work headless.

This module only builds the parser from the command modules in `pneumoviewer.commands` and
dispatches to the chosen one's `run`; the modules import nothing heavy until they run, so
`--help` and `--version` stay instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pneumoviewer import __version__
from pneumoviewer.commands import (
    case_reports,
    convert_rle,
    evaluate,
    export,
    finetune,
    gui,
    info,
    install_desktop,
    pacs,
    predict,
    self_test,
    stats,
    train,
    uninstall_desktop,
)

# In the order `--help` lists them.
COMMANDS = (install_desktop, uninstall_desktop, self_test, predict, evaluate, train, info, convert_rle, export,
            pacs, case_reports, stats, finetune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pneumoviewer",
        description="Pneumothorax review on chest X-rays. With no subcommand, opens the desktop app "
        "(optionally on PATH: a folder of DICOMs, or files).",
    )
    parser.add_argument("--version", action="version", version=f"pneumoviewer {__version__}")
    gui.register_default(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `--self-test` is the flag spelling of the `self-test` subcommand (bundles are smoke-tested with it).
    argv = ["self-test" if arg == "--self-test" else arg for arg in argv]
    parser = build_parser()
    # `pneumoviewer PATH...` opens the GUI on those paths; anything else is a subcommand.
    if argv and not argv[0].startswith("-") and argv[0] not in _subcommand_names(parser):
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
