"""The Linux launcher: entry text, quoting, install/uninstall for a user, and launching it as a desktop does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from pneumoviewer import desktop
from pneumoviewer.cli import main
from pneumoviewer.desktop import (
    DesktopInstallError,
    exec_argument,
    install_desktop,
    launcher_command,
    render_desktop_entry,
    uninstall_desktop,
)
from pneumoviewer.paths import ICON_SIZES, icon_path


def entry_values(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:])


def test_bundled_icons_exist_at_every_size() -> None:
    assert icon_path().read_text(encoding="utf-8").lstrip().startswith("<?xml")
    for size in ICON_SIZES:
        with Image.open(icon_path(size)) as image:
            assert image.size == (size, size)
            assert image.mode == "RGBA"
            # Transparent corners (rounded tile), opaque centre: it is a drawn icon, not a blank square.
            assert image.getpixel((0, 0))[3] == 0
            assert image.getpixel((size // 2, size // 2))[3] == 255
    with pytest.raises(ValueError, match="no 20 px icon"):
        icon_path(20)


@pytest.mark.parametrize(
    ("argument", "written"),
    [
        ("/usr/bin/pneumoviewer-gui", "/usr/bin/pneumoviewer-gui"),
        ("/home/ann/My Apps/bin/pneumoviewer-gui", '"/home/ann/My Apps/bin/pneumoviewer-gui"'),
        ("/opt/100%/app", "/opt/100%%/app"),
        # `$` must be backslash-escaped inside quotes, and that backslash doubled as a string escape.
        ("/home/a$b/app", '"/home/a\\\\$b/app"'),
        ('say "hi"', '"say \\\\"hi\\\\""'),
    ],
)
def test_exec_arguments_are_quoted_as_the_spec_requires(argument: str, written: str) -> None:
    assert exec_argument(argument) == written


def test_rendered_entry_points_at_the_command_and_opens_dicoms() -> None:
    values = entry_values(render_desktop_entry(["/opt/Pneumo Viewer/pneumoviewer"]))
    assert values["Exec"] == '"/opt/Pneumo Viewer/pneumoviewer" %F'
    assert values["TryExec"] == "/opt/Pneumo Viewer/pneumoviewer"
    assert values["Type"] == "Application"
    assert values["Icon"] == "pneumoviewer"
    assert values["Terminal"] == "false"
    assert values["Categories"].split(";")[:2] == ["Graphics", "MedicalSoftware"]
    assert "application/dicom" in values["MimeType"].split(";")
    # Claiming every folder would make a per-user launcher the default folder handler.
    assert "inode/directory" not in values["MimeType"]


def test_launcher_command_points_at_this_installation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    monkeypatch.setattr(sys, "executable", str(python))
    assert launcher_command() == [str(python), "-m", "pneumoviewer"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # a bundle's binary is the app itself
    assert launcher_command() == [str(python)]
    gui_program = python.parent / "pneumoviewer-gui"  # the venv's gui-script, or the bundle's GUI binary
    gui_program.write_text("#!/bin/sh\n")
    gui_program.chmod(0o755)
    assert launcher_command() == [str(gui_program)]
    monkeypatch.delattr(sys, "frozen")
    assert launcher_command() == [str(gui_program)]


def test_install_and_uninstall_for_a_user(tmp_path: Path) -> None:
    data_home = tmp_path / "share"
    installed = install_desktop(data_home, ["/opt/pneumoviewer/pneumoviewer"])
    assert installed.desktop_file == data_home / "applications" / "pneumoviewer.desktop"
    exec_line = entry_values(installed.desktop_file.read_text(encoding="utf-8"))["Exec"]
    assert exec_line == "/opt/pneumoviewer/pneumoviewer %F"
    for size in ICON_SIZES:
        installed_icon = data_home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "pneumoviewer.png"
        assert installed_icon.read_bytes() == icon_path(size).read_bytes()
    assert (data_home / "icons" / "hicolor" / "scalable" / "apps" / "pneumoviewer.svg").is_file()
    assert len(installed.icon_files) == len(ICON_SIZES) + 1

    install_desktop(data_home, ["/elsewhere/pneumoviewer"])  # re-installing replaces, never duplicates
    assert "Exec=/elsewhere/pneumoviewer %F" in installed.desktop_file.read_text(encoding="utf-8")

    removed = uninstall_desktop(data_home)
    assert set(removed) == {installed.desktop_file, *installed.icon_files}
    assert not any(path.is_file() and "pneumoviewer" in path.name for path in data_home.rglob("*"))
    assert uninstall_desktop(data_home) == []


def test_install_into_an_unwritable_place_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "share"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(DesktopInstallError) as caught:
        install_desktop(blocker, ["/opt/pneumoviewer"])
    assert str(blocker) in str(caught.value)


def test_cli_install_and_uninstall(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install-desktop", "--data-home", str(tmp_path)]) == 0
    output = capsys.readouterr().out
    assert f"Installed {tmp_path / 'applications' / 'pneumoviewer.desktop'}" in output
    exec_line = entry_values((tmp_path / "applications" / "pneumoviewer.desktop").read_text(encoding="utf-8"))["Exec"]
    assert exec_line.endswith(" %F") and exec_line.startswith("/")
    assert main(["uninstall-desktop", "--data-home", str(tmp_path)]) == 0
    assert "Removed 8 files" in capsys.readouterr().out
    assert main(["uninstall-desktop", "--data-home", str(tmp_path)]) == 0
    assert "No PneumoViewer launcher was installed" in capsys.readouterr().out


def test_cli_reports_a_missing_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(desktop, "resources_dir", lambda: tmp_path / "resources")
    assert main(["install-desktop", "--data-home", str(tmp_path / "share")]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"pneumoviewer: {tmp_path / 'resources' / 'pneumoviewer.desktop'}: ")
    assert "template is missing" in error


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="needs desktop-file-utils")
def test_installed_entry_passes_desktop_file_validate(tmp_path: Path) -> None:
    installed = install_desktop(tmp_path, ["/opt/Pneumo Viewer/pneumoviewer-gui"])
    for path in (desktop.template_path(), installed.desktop_file):
        result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "error" not in result.stdout


@pytest.mark.skipif(shutil.which("gio") is None, reason="needs gio (libglib2.0-bin)")
def test_a_file_manager_launch_passes_files_and_folders(tmp_path: Path) -> None:
    """`gio launch` reads the entry as a desktop would: the Exec quoting and %F must survive it."""
    record = tmp_path / "argv.json"
    recorder = f"import json, sys; open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))"
    data_home = tmp_path / "odd $dir"
    installed = install_desktop(data_home, [sys.executable, "-c", recorder])
    study = data_home / "a study; with 'quotes'.dcm"
    study.write_bytes(b"")
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_DATA_HOME": str(data_home)}
    subprocess.run(["gio", "launch", str(installed.desktop_file), str(study), str(tmp_path)],
                   check=True, env=environment, timeout=30)
    deadline = time.monotonic() + 20  # gio returns once the child is spawned, not when it exits
    while not (record.exists() and record.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert json.loads(record.read_text()) == [str(study), str(tmp_path)]
