"""The wheel carries what the app needs: built from this checkout, installed into a fresh venv, self-tested there.

A full install of the dependencies would copy ~6 GB (torch and the CUDA libraries its Linux wheel
names) for minutes; the fresh venv borrows them instead from the environment running the tests, through
a .pth line (a plain path entry: that environment's own .pth files, among them the editable install's
finder, are not run). pip installs the wheel there with `--no-index`, so each of its requirements must
be met by what it can see, and the package, its resources and its entry points are the wheel's own.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pneumoviewer.paths import resources_dir

REPO = Path(__file__).resolve().parent.parent
BUILD_FILES = ("pyproject.toml", "README.md", "LICENSE")
SCRIPTS = "Scripts" if os.name == "nt" else "bin"  # a venv's programs


def _run(command: list[str | Path], cwd: Path) -> str:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment.update(QT_QPA_PLATFORM="offscreen", XDG_CACHE_HOME=str(cwd / "cache"))  # never the user's ONNX cache
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=environment, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built from a copy (setuptools writes build/ and egg-info where it builds)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO / "pneumoviewer", source / "pneumoviewer", ignore=shutil.ignore_patterns("__pycache__"))
    for name in BUILD_FILES:
        shutil.copy2(REPO / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", work / "dist", source], cwd=work)
    (built,) = (work / "dist").glob("pneumoviewer-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_every_resource(wheel: Path) -> None:
    shipped = {
        "pneumoviewer/resources/" + path.relative_to(resources_dir()).as_posix()
        for path in resources_dir().rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }
    names = set(zipfile.ZipFile(wheel).namelist())
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"
    for needed in ("models/default.safetensors", "models/default.json", "pneumoviewer.desktop",
                   "icons/pneumoviewer.svg", "icons/pneumoviewer-256.png", "demo/ground-truth-rle.csv"):
        assert f"pneumoviewer/resources/{needed}" in names
    assert sum(name.startswith("pneumoviewer/resources/demo/") and name.endswith(".dcm") for name in names) == 6


@pytest.mark.slow
def test_the_wheel_installed_into_a_fresh_venv_passes_its_self_test(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / SCRIPTS / "python"
    fresh_site = Path(_run([python, "-c", "import site; print(site.getsitepackages()[0])"], cwd=tmp_path).strip())
    (fresh_site / "borrowed-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "--no-cache-dir", "-q", wheel],
         cwd=tmp_path)

    where = _run([python, "-c", "import pneumoviewer, pneumoviewer.paths as p; "
                  "print(pneumoviewer.__file__); print(p.resources_dir())"], cwd=tmp_path).split()
    assert [Path(path).is_relative_to(fresh_site) for path in where] == [True, True], where
    output = _run([venv / SCRIPTS / "pneumoviewer", "--self-test"], cwd=tmp_path)
    assert "default.safetensors" in output and "icon (SVG + PNG) drawn" in output
    assert output.rstrip().splitlines()[-1].startswith("self-test passed")
