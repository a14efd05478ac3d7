"""Install and remove the Linux desktop launcher (freedesktop `.desktop` entry + hicolor icons).

Installs for the current user only, under `$XDG_DATA_HOME` (default `~/.local/share`):
`applications/pneumoviewer.desktop` and `icons/hicolor/<size>/apps/pneumoviewer.{png,svg}`.
The entry's Exec line points at this very installation (the venv's `pneumoviewer-gui` script,
the bundle's program, or `python -m pneumoviewer`), so the launcher keeps working when no
`pneumoviewer` is on the desktop session's PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pneumoviewer.errors import FileProblem
from pneumoviewer.paths import ICON_SIZES, icon_path, resources_dir

DESKTOP_FILE_NAME = "pneumoviewer.desktop"
ICON_NAME = "pneumoviewer"
# Characters after which the desktop-entry spec requires an Exec argument to be double-quoted.
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")


class DesktopInstallError(FileProblem):
    """The launcher could not be installed or removed; `path` names the file involved."""


@dataclass(frozen=True)
class DesktopInstall:
    desktop_file: Path
    icon_files: list[Path]
    command: list[str]
    notes: list[str] = field(default_factory=list)  # what the user may want to know (missing tools)


def template_path() -> Path:
    return resources_dir() / DESKTOP_FILE_NAME


def xdg_data_home() -> Path:
    """`$XDG_DATA_HOME` if set to an absolute path (the spec says to ignore relative ones), else ~/.local/share."""
    configured = os.environ.get("XDG_DATA_HOME", "")
    if configured and os.path.isabs(configured):
        return Path(configured)
    return Path.home() / ".local" / "share"


def launcher_command() -> list[str]:
    """The command that starts this installation's GUI, as absolute paths."""
    # Not resolved: a venv's python is a symlink whose location is what selects the venv.
    executable = os.path.abspath(sys.executable)
    # Beside a venv's python sits its gui-script; beside a Windows/macOS bundle's CLI binary, its GUI
    # binary (a Linux bundle has one program for both).
    gui_program = Path(executable).parent / "pneumoviewer-gui"
    if gui_program.is_file() and os.access(gui_program, os.X_OK):
        return [str(gui_program)]
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: its binary is the app
        return [executable]
    return [executable, "-m", "pneumoviewer"]


def exec_argument(argument: str) -> str:
    """One Exec-line argument, quoted and escaped as the desktop-entry spec requires."""
    if "\n" in argument or "\r" in argument:
        raise ValueError(f"a launcher argument cannot contain a line break: {argument!r}")
    argument = argument.replace("%", "%%")
    if any(char in _EXEC_RESERVED for char in argument):
        argument = '"' + re.sub(r'(["`$\\])', r"\\\1", argument) + '"'
    # The Exec value is also a desktop-entry string, whose own escaping doubles every backslash.
    return argument.replace("\\", "\\\\")


def render_desktop_entry(command: Sequence[str], template: str | None = None) -> str:
    """The template's text with Exec (plus %F: files and folders) and TryExec set to `command`."""
    text = template if template is not None else template_path().read_text(encoding="utf-8")
    exec_line = "Exec=" + " ".join(exec_argument(argument) for argument in command) + " %F"
    try_exec_line = "TryExec=" + command[0].replace("\\", "\\\\")
    lines = []
    for line in text.splitlines():
        if line.startswith("Exec="):
            line = exec_line
        elif line.startswith("TryExec="):
            line = try_exec_line
        lines.append(line)
    return "\n".join(lines) + "\n"


def _installed_icons(data_home: Path) -> dict[Path, Path]:
    """Installed icon path -> bundled source, for every size plus the scalable SVG."""
    hicolor = data_home / "icons" / "hicolor"
    icons = {hicolor / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png": icon_path(size) for size in ICON_SIZES}
    icons[hicolor / "scalable" / "apps" / f"{ICON_NAME}.svg"] = icon_path()
    return icons


def install_desktop(data_home: Path | None = None, command: Sequence[str] | None = None) -> DesktopInstall:
    """Write the launcher and icons for the current user; replaces an earlier install."""
    data_home = data_home if data_home is not None else xdg_data_home()
    command = list(command) if command is not None else launcher_command()
    template = template_path()
    if not template.is_file():
        raise DesktopInstallError(template, "the launcher template is missing from this installation")
    icon_files = []
    for target, source in _installed_icons(data_home).items():
        if not source.is_file():
            raise DesktopInstallError(source, "the icon file is missing from this installation")
        _copy(source, target)
        icon_files.append(target)
    desktop_file = data_home / "applications" / DESKTOP_FILE_NAME
    _write(desktop_file, render_desktop_entry(command, template.read_text(encoding="utf-8")))
    desktop_file.chmod(0o755)  # some file managers only trust executable launchers
    notes = _refresh_caches(data_home)
    return DesktopInstall(desktop_file=desktop_file, icon_files=icon_files, command=command, notes=notes)


def uninstall_desktop(data_home: Path | None = None) -> list[Path]:
    """Remove the launcher and icons that `install_desktop` wrote; returns the files removed."""
    data_home = data_home if data_home is not None else xdg_data_home()
    removed = []
    for path in [data_home / "applications" / DESKTOP_FILE_NAME, *_installed_icons(data_home)]:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise DesktopInstallError(path, f"could not remove it ({error.strerror})") from error
        removed.append(path)
    if removed:
        _refresh_caches(data_home)
    return removed


def _copy(source: Path, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    except OSError as error:
        raise DesktopInstallError(target, f"could not write it ({error.strerror})") from error


def _write(target: Path, text: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(target)  # a file manager watching the folder never sees half an entry
    except OSError as error:
        raise DesktopInstallError(target, f"could not write it ({error.strerror})") from error


def _refresh_caches(data_home: Path) -> list[str]:
    """Tell the desktop about the change; returns notes for tools that are not there."""
    notes = []
    hicolor = data_home / "icons" / "hicolor"
    if hicolor.is_dir():
        # Icon caches compare their own time with the theme folder's; a newer folder makes them re-scan.
        os.utime(hicolor)
    applications = data_home / "applications"
    update_database = shutil.which("update-desktop-database")
    if update_database is None:
        notes.append(
            "update-desktop-database was not found (Debian package desktop-file-utils): "
            "'Open with PneumoViewer' for DICOM files may appear only after the next log-in"
        )
    elif applications.is_dir():
        subprocess.run([update_database, "-q", str(applications)], check=False, capture_output=True)
    return notes
