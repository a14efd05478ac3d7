"""`dciodvfy` (Debian `dicom3tools`): the DICOM validator every written object must pass without errors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DCIODVFY = shutil.which("dciodvfy")
needs_dciodvfy = pytest.mark.skipif(
    DCIODVFY is None,
    reason="dciodvfy not installed (Debian package dicom3tools; scripts/install.sh installs it as root)")


def dciodvfy_errors(path: Path) -> list[str]:
    """Its "Error" lines for `path` (warnings are allowed: the sources' own dubious values show up there)."""
    assert DCIODVFY is not None
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]
