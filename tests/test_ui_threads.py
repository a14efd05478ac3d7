"""Threads in the real window: workers never touch a widget, and torch is never imported on the GUI thread."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from ui_driver import WAIT_MS, open_and_wait, paint

from pneumoviewer.review import autosave
from pneumoviewer.review.case import ReviewStatus

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder


def test_an_import_onto_a_full_disk_says_so_in_the_window_and_loses_no_file(
    qtbot, make_window, study_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    session = window.controller.session
    edited = session.case(window.controller.current_id)
    QTest.keyClick(window, Qt.Key.Key_B)
    paint(window, 300, (300, 400))  # saved while there is room
    saved_file = session.store.mask_path(edited.image_id)
    saved_bytes = saved_file.read_bytes()
    other = next(case for case in session.cases if case is not edited)
    csv_file = tmp_path / "reference.csv"
    csv_file.write_text(f"ImageId,EncodedPixels\n{edited.image_id},{1024 * 100 + 100} 50\n"
                        f"{other.image_id},{1024 * 200 + 200} 30\n")

    def disk_full(path, text, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(autosave, "atomic_write_text", disk_full)
    failure_threads: list[threading.Thread] = []
    session.save_failed.connect(lambda error: failure_threads.append(threading.current_thread()))
    messages: list[tuple[str, threading.Thread]] = []
    show_message = window.status.showMessage

    def recording_show_message(text, *args):
        messages.append((text, threading.current_thread()))
        show_message(text, *args)

    monkeypatch.setattr(window.status, "showMessage", recording_show_message)
    with qtbot.waitSignal(window.controller.sigTaskFinished, timeout=WAIT_MS):
        window.controller.import_csv(csv_file)
    # The status bar said so (the import's own summary may follow it a moment later).
    qtbot.waitUntil(lambda: any("Autosave failed" in text and "disk is full" in text for text, _ in messages),
                    timeout=WAIT_MS)

    # Reported on the import's thread (and again on the GUI thread when a later change retries the save)...
    assert any(thread is not threading.main_thread() for thread in failure_threads)
    assert {thread for _, thread in messages} == {threading.main_thread()}  # but drawn on the GUI thread
    assert int(edited.mask.sum()) == 50 and int(other.mask.sum()) == 30  # the import is kept in memory
    assert saved_file.read_bytes() == saved_bytes  # the saved mask is whole, not half-overwritten
    assert session.has_unsaved_changes

    monkeypatch.undo()  # room again: the next change saves what was pending
    QTest.keyClick(window, Qt.Key.Key_A)
    assert edited.status is ReviewStatus.ACCEPTED and not session.has_unsaved_changes
    saved = session.store.load_mask(other.image_id, other.shape)
    assert saved is not None and np.array_equal(saved, other.mask)


# A fresh app process (this one has long imported everything): `first_import` records which thread first imported
# each of the WATCHED modules; the script prints "RESULT <json>" once `done()` says so (polled every 50 ms).
_WINDOW_SCRIPT = """
import importlib.abc, json, sys, threading
from pathlib import Path

WATCHED = {watched!r}
first_import = {{}}

class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in WATCHED and name not in first_import:
            first_import[name] = threading.current_thread().name
        return None

sys.meta_path.insert(0, Watch())
from PySide6.QtCore import QTimer
from pneumoviewer.ui.app import application
from pneumoviewer.ui.main_window import MainWindow

app = application()
{body}

def check():
    result = done()
    if result is not None:
        print("RESULT", json.dumps(result), flush=True)
        window.close()
        app.quit()
    else:
        QTimer.singleShot(50, check)

QTimer.singleShot(50, check)
QTimer.singleShot(120_000, app.quit)
app.exec()
"""


def run_window_script(watched: tuple[str, ...], body: str, arguments: list[str], tmp_path: Path) -> dict:
    """`_WINDOW_SCRIPT` watching `watched`, around `body` (which builds `window` and defines `done`), offscreen."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "xdg"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    script = _WINDOW_SCRIPT.format(watched=watched, body=textwrap.dedent(body))
    finished = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, env=env,
                              timeout=180, check=False)
    lines = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, finished.stdout + finished.stderr
    return json.loads(lines[0].removeprefix("RESULT "))


def test_the_window_s_process_never_imports_torch(random_checkpoint: Path, tmp_path: Path) -> None:
    """A fresh process (this one has torch already) opens the demo studies and predicts them all: the model
    runs in a child process (ui/model_runner.py), so neither torch nor the inference module loads here."""
    from pneumoviewer.paths import demo_dir

    result = run_window_script(("torch", "pneumoviewer.model.inference"), """
        checkpoint, folder, data = (Path(arg) for arg in sys.argv[1:4])
        window = MainWindow(data_dir=data)  # the app's own model: the bundled one...
        window.setProperty("quiet", True)
        window.controller.use_model(checkpoint)  # ...then the menu's "use another model", before anything loaded
        window.show()
        window.controller.open_paths([folder])

        def done():
            rows = window.worklist_model.rows()
            if rows and all(row.score is not None for row in rows):
                return {"rows": len(rows), "imported": first_import}
    """, [str(random_checkpoint), str(demo_dir()), str(tmp_path / "data")], tmp_path)
    assert result["rows"] == 6
    assert result["imported"] == {}


_PREDICT_WITHOUT_TRITON = textwrap.dedent("""
    import json, sys
    import numpy as np
    from pneumoviewer.ui.model_runner import triton_left_unimported
    triton_left_unimported()
    from pneumoviewer.model.cam import grad_cam
    from pneumoviewer.model.inference import Predictor
    predictor = Predictor(sys.argv[1])
    pixels = np.random.default_rng(7).random((512, 512), dtype=np.float32)
    prediction = predictor.predict(pixels)
    print("RESULT", json.dumps({"score": prediction.score, "probability": float(prediction.probability.sum()),
                                "cam": float(grad_cam(predictor, pixels).sum()),
                                "triton_refused": sys.modules["triton"] is None}))
""")


def test_without_triton_the_model_predicts_and_explains_the_same(random_checkpoint: Path, tmp_path: Path) -> None:
    """The app's model load keeps Triton (GPU kernel compiler, never used) out; the figures do not move."""
    from pneumoviewer.model.cam import grad_cam
    from pneumoviewer.model.inference import Predictor

    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    finished = subprocess.run([sys.executable, "-c", _PREDICT_WITHOUT_TRITON, str(random_checkpoint)],
                              capture_output=True, text=True, env=env, timeout=180, check=False)
    lines = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, finished.stdout + finished.stderr
    without = json.loads(lines[0].removeprefix("RESULT "))
    predictor = Predictor(random_checkpoint)
    pixels = np.random.default_rng(7).random((512, 512), dtype=np.float32)
    prediction = predictor.predict(pixels)
    assert without["triton_refused"] is True
    assert without["score"] == pytest.approx(prediction.score, abs=1e-6)
    assert without["probability"] == pytest.approx(float(prediction.probability.sum()), rel=1e-5)
    assert without["cam"] == pytest.approx(float(grad_cam(predictor, pixels).sum()), rel=1e-5)


def test_modules_imported_while_the_model_loads_are_not_read_for_pyside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PySide6's import hook reads each new module's source for "PySide6"; on the thread loading the
    model it does not (the model's modules never use PySide), on the others it still does."""
    import uuid

    import PySide6  # noqa: F401  (installs the import hook)
    import shibokensupport.feature as feature  # the hook's bookkeeping, part of PySide6

    from pneumoviewer.ui.model_runner import pyside_source_check_skipped

    names = {role: f"probe_{role}_{uuid.uuid4().hex[:8]}" for role in ("loading", "beside", "after")}
    for name in names.values():
        (tmp_path / f"{name}.py").write_text("import PySide6  # what the hook looks for\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pyside_source_check_skipped():
        __import__(names["loading"])
        beside = threading.Thread(target=__import__, args=(names["beside"],))
        beside.start()
        beside.join()
    __import__(names["after"])
    uses_pyside = {role: feature.pyside_feature_dict[name] for role, name in names.items()}
    assert uses_pyside == {"loading": -1, "beside": 0, "after": 0}  # -1: not using PySide; 0: uses it


def test_the_window_imports_the_review_stack_in_the_background_once_it_has_painted(tmp_path: Path) -> None:
    """Nothing opened yet: pydicom, Pillow's JPEG codec, the opening and lesion code are imported on
    a worker after the window is shown, so a folder opened later imports nothing beside the GUI thread."""
    watched = ("pydicom", "PIL.JpegImagePlugin", "pneumoviewer.review.opening", "pneumoviewer.review.lesions")
    result = run_window_script(watched, """
        window = MainWindow(data_dir=Path(sys.argv[1]))
        window.setProperty("quiet", True)
        before_show = sorted(first_import)
        window.show()

        def done():
            if len(first_import) == len(WATCHED):
                return {"before_show": before_show, "threads": first_import}
    """, [str(tmp_path / "data")], tmp_path)
    assert result["before_show"] == []
    assert "MainThread" not in result["threads"].values(), result["threads"]
