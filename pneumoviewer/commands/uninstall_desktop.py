"""`pneumoviewer uninstall-desktop`: remove what install-desktop added."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "uninstall-desktop", help="remove the launcher and icons that install-desktop added"
    )
    parser.add_argument("--data-home", type=Path, help="remove from this folder instead of $XDG_DATA_HOME")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.desktop import DesktopInstallError, uninstall_desktop

    try:
        removed = uninstall_desktop(args.data_home)
    except DesktopInstallError as error:
        return fail(error)
    print(f"Removed {len(removed)} files" if removed else "No PneumoViewer launcher was installed")
    for path in removed:
        print(f"  {path}")
    return 0
