"""`pneumoviewer install-desktop`: a launcher and icons in this user's application menu (Linux)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "install-desktop",
        help="add PneumoViewer to this user's application menu and 'Open with' (Linux)",
        description="Install a freedesktop launcher and icons for the current user, pointing at this "
        "installation, so DICOM files and folders can be opened with PneumoViewer from the desktop.",
    )
    parser.add_argument("--data-home", type=Path, help="install under this folder instead of $XDG_DATA_HOME")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.desktop import DesktopInstallError, install_desktop

    if not sys.platform.startswith(("linux", "freebsd")):
        return fail("install-desktop: desktop launchers are for Linux; see packaging/README.md "
                    "for Windows and macOS", status=2)
    try:
        installed = install_desktop(args.data_home)
    except DesktopInstallError as error:
        return fail(error)
    print(f"Installed {installed.desktop_file}")
    print(f"  runs:  {' '.join(installed.command)}")
    print(f"  icons: {len(installed.icon_files)} files under {installed.icon_files[0].parents[2]}")
    for note in installed.notes:
        print(f"  note: {note}")
    return 0
