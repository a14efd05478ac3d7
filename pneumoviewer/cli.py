"""The one entry point: `pneumoviewer` opens the GUI; subcommands do the same work headless.

Each subcommand is a `_cmd_<name>(args) -> int` handler registered in `build_parser`.
Heavy imports (torch, Qt) happen inside handlers so `--help` and `--version` stay instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pneumoviewer import __version__


def _cmd_gui(args: argparse.Namespace) -> int:
    from pneumoviewer.ui.app import run_app

    return run_app(paths=args.paths, demo=args.demo)


# Each entry adds one subparser (with `handler=`) to the subparsers action it is given.
_SUBCOMMANDS: list = []


def _register_install_desktop(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "install-desktop",
        help="add PneumoViewer to this user's application menu and 'Open with' (Linux)",
        description="Install a freedesktop launcher and icons for the current user, pointing at this "
        "installation, so DICOM files and folders can be opened with PneumoViewer from the desktop.",
    )
    parser.add_argument("--data-home", type=Path, help="install under this folder instead of $XDG_DATA_HOME")
    parser.set_defaults(handler=_cmd_install_desktop)


def _cmd_install_desktop(args: argparse.Namespace) -> int:
    from pneumoviewer.desktop import DesktopInstallError, install_desktop

    if not sys.platform.startswith(("linux", "freebsd")):
        print("pneumoviewer: install-desktop: desktop launchers are for Linux; see packaging/README.md "
              "for Windows and macOS", file=sys.stderr)
        return 2
    try:
        installed = install_desktop(args.data_home)
    except DesktopInstallError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 1
    print(f"Installed {installed.desktop_file}")
    print(f"  runs:  {' '.join(installed.command)}")
    print(f"  icons: {len(installed.icon_files)} files under {installed.icon_files[0].parents[2]}")
    for note in installed.notes:
        print(f"  note: {note}")
    return 0


_SUBCOMMANDS.append(_register_install_desktop)


def _register_uninstall_desktop(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "uninstall-desktop", help="remove the launcher and icons that install-desktop added"
    )
    parser.add_argument("--data-home", type=Path, help="remove from this folder instead of $XDG_DATA_HOME")
    parser.set_defaults(handler=_cmd_uninstall_desktop)


def _cmd_uninstall_desktop(args: argparse.Namespace) -> int:
    from pneumoviewer.desktop import DesktopInstallError, uninstall_desktop

    try:
        removed = uninstall_desktop(args.data_home)
    except DesktopInstallError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 1
    print(f"Removed {len(removed)} files" if removed else "No PneumoViewer launcher was installed")
    for path in removed:
        print(f"  {path}")
    return 0


_SUBCOMMANDS.append(_register_uninstall_desktop)


def _register_self_test(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "self-test",
        help="check this installation end to end without opening a window (also: --self-test)",
        description="Load a demo DICOM, run the model and Grad-CAM, write and re-read an RLE CSV in a "
        "temporary folder and start Qt offscreen; prints one line per step. Exit status 0 = all passed.",
    )
    parser.add_argument("--image", type=Path, help="radiograph to use (default: the first bundled demo study)")
    parser.add_argument("--model", type=Path, help="model weights to use (default: the bundled model)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder with the CSV")
    parser.set_defaults(handler=_cmd_self_test)


def _cmd_self_test(args: argparse.Namespace) -> int:
    from pneumoviewer.self_test import SelfTestError, run_self_test

    try:
        run_self_test(image=args.image, model=args.model, keep=args.keep)
    except SelfTestError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        print("self-test FAILED", file=sys.stderr)
        return 1
    return 0


_SUBCOMMANDS.append(_register_self_test)


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
    # `--self-test` is the flag spelling of the `self-test` subcommand (bundles are smoke-tested with it).
    argv = ["self-test" if arg == "--self-test" else arg for arg in argv]
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
