"""The rooms stay apart: the core never imports Qt, the command line starts and the model card reads without torch.

Each check runs in a fresh interpreter, because this test process has long since imported Qt
(pytest-qt) and torch; only a clean `sys.modules` shows what one import pulls in.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
QT = ("PySide6", "shiboken6", "pyqtgraph")
CORE_ROOMS = ("pneumoviewer.errors", "pneumoviewer.progress", "pneumoviewer.pacing", "pneumoviewer.metrics", "pneumoviewer.io",
              "pneumoviewer.model", "pneumoviewer.review", "pneumoviewer.training", "pneumoviewer.pacs",
              "pneumoviewer.reports")


def _run_fresh(code: str) -> dict:
    """Run `code` in a new interpreter that imports this checkout's package; returns its JSON output."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _present_rooms() -> list[str]:
    # `training` is being split out of `model`; until it exists there is nothing of it to check.
    return [room for room in CORE_ROOMS if importlib.util.find_spec(room) is not None]


def test_core_rooms_never_import_qt() -> None:
    rooms = _present_rooms()
    found = _run_fresh(f"""
        import importlib, json, pkgutil, sys

        qt = {QT!r}

        def loaded_qt():
            return sorted(name for name in sys.modules if name.split(".")[0] in qt)

        modules, blamed = [], {{}}
        for room in {rooms!r}:
            package = importlib.import_module(room)
            names = [room]
            if hasattr(package, "__path__"):
                names += [info.name for info in pkgutil.walk_packages(package.__path__, room + ".")]
            for name in names:
                before = set(loaded_qt())
                importlib.import_module(name)
                modules.append(name)
                new = sorted(set(loaded_qt()) - before)
                if new:
                    blamed[name] = new[:3]
        print(json.dumps({{"modules": modules, "qt": blamed}}))
    """)
    assert found["qt"] == {}, f"core modules that import Qt: {found['qt']}"
    # The walk really reached into every room (an empty walk would pass vacuously).
    for room in rooms:
        assert any(name.startswith(room) for name in found["modules"]), room
    assert {"pneumoviewer.io.dicom", "pneumoviewer.model.inference", "pneumoviewer.review.session"} <= set(
        found["modules"])


def test_command_line_help_and_version_load_no_torch_or_qt() -> None:
    heavy = ("torch", "onnxruntime", "matplotlib", *QT)
    found = _run_fresh(f"""
        import contextlib, io, json, sys

        from pneumoviewer.cli import main

        statuses = []
        for argv in (["--help"], ["--version"], ["predict", "--help"], ["evaluate", "--help"], ["report", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    main(argv)
                except SystemExit as done:
                    statuses.append(done.code)
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in {heavy!r})
        print(json.dumps({{"statuses": statuses, "heavy": heavy[:5]}}))
    """)
    assert found["statuses"] == [0, 0, 0, 0, 0]
    assert found["heavy"] == [], f"`pneumoviewer --help` imported {found['heavy']}"


def test_the_model_card_and_a_runs_settings_are_read_without_torch() -> None:
    """What a cluster's client checks before any worker loads the network (commands/_archive.py)."""
    found = _run_fresh("""
        import json, sys

        from pneumoviewer.commands._settings import request_settings
        from pneumoviewer.model.card import load_card
        from pneumoviewer.paths import default_model_path

        card = load_card(default_model_path())
        settings = request_settings(card.settings, {"tta": True}).to_dict()
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("torch", "onnxruntime"))
        print(json.dumps({"input_size": card.network.input_size, "tta": settings["tta"], "heavy": heavy[:5]}))
    """)
    assert found["input_size"] > 0 and found["tta"] is True
    assert found["heavy"] == [], f"reading the card imported {found['heavy']}"


def test_the_window_module_loads_no_cuda_python_and_leaves_it_importable() -> None:
    """pyqtgraph would import cuda-python (docs/benchmarks.md: a large share of its import on a busy machine)."""
    found = _run_fresh("""
        import importlib.util, json, os, sys

        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        import pneumoviewer.ui.main_window  # noqa: F401

        loaded = sorted(name for name in sys.modules if name.split(".")[0] == "cuda")
        installed = importlib.util.find_spec("cuda") is not None and importlib.util.find_spec("cuda.bindings") is not None
        if installed:
            import cuda.bindings.runtime  # noqa: F401  (torch may still use it later)
        print(json.dumps({"loaded": loaded, "installed": installed}))
    """)
    assert [name for name in found["loaded"] if name.startswith("cuda.bindings")] == []
