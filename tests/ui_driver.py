"""Driving the real main window as a user would: a folder of real SIIM DICOMs, a window factory, mouse drags.

Shared by the window tests (imported as fixtures and helpers).
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

POSITIVES = 3
NEGATIVES = 2
WAIT_MS = 60_000  # generous: CI shares two cores with other jobs


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory: pytest.TempPathFactory, siim_dir: Path, siim_labels_csv: Path) -> Path:
    """A few real DICOMs (positives and negatives) in nested folders, plus one broken file."""
    labels: dict[str, bool] = {}
    with open(siim_labels_csv, newline="") as stream:
        for image_id, encoded in list(csv.reader(stream))[1:]:
            labels[image_id.strip()] = labels.get(image_id.strip(), False) or encoded.strip() != "-1"
    files = {path.stem: path for path in sorted((siim_dir / "dicom-images").rglob("*.dcm"))}
    positives = [image_id for image_id in files if labels.get(image_id)][:POSITIVES]
    negatives = [image_id for image_id in files if labels.get(image_id) is False][:NEGATIVES]
    folder = tmp_path_factory.mktemp("studies")
    for number, image_id in enumerate(positives + negatives):
        target = folder / f"study{number}" / f"{image_id}.dcm"
        target.parent.mkdir()
        shutil.copyfile(files[image_id], target)
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"truncated")
    return folder


@pytest.fixture
def make_window(qtbot, random_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Factory for main windows sharing one autosave folder; all are closed (threads stopped) at the end."""
    from pneumoviewer.model.inference import Predictor
    from pneumoviewer.ui.app import application
    from pneumoviewer.ui.main_window import MainWindow

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # recent folders stay in the test
    application()
    windows = []

    def make(predictor_factory=None, model_checkpoint: Path | None = None) -> MainWindow:
        """A window on `predictor_factory` (default: the random model, whose stored results it reuses)."""
        if predictor_factory is None:
            predictor_factory, model_checkpoint = (lambda: Predictor.cached(random_checkpoint)), random_checkpoint
        window = MainWindow(predictor_factory, tmp_path / "sessions", model_checkpoint)
        window.setProperty("quiet", True)
        qtbot.addWidget(window)
        window.resize(1400, 900)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)  # shortcuts only reach the active window
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.controller.pool.running()


@pytest.fixture
def make_controller(qtbot, random_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Factory for review controllers with no window, sharing one autosave folder; all closed at the end."""
    from pneumoviewer.model.inference import Predictor
    from pneumoviewer.ui.app import application
    from pneumoviewer.ui.controller import ReviewController

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    application()
    controllers = []

    def make(predictor_factory=None, model_checkpoint: Path | None = None) -> ReviewController:
        controller = ReviewController(predictor_factory or (lambda: Predictor.cached(random_checkpoint)),
                                      tmp_path / "sessions", model_checkpoint)
        controllers.append(controller)
        return controller

    yield make
    for controller in controllers:
        controller.close()
        assert not controller.pool.running()


class SlowPredictor:
    """A real model slowed down, so an AI sweep is still running when the test acts on it."""

    def __init__(self, checkpoint: Path, delay_s: float) -> None:
        from pneumoviewer.model.inference import Predictor

        self.inner = Predictor.cached(checkpoint)
        self.checkpoint = self.inner.checkpoint
        self.delay_s = delay_s

    def predict(self, pixels, cancel=None):
        time.sleep(self.delay_s)
        return self.inner.predict(pixels, cancel=cancel)


def predictor_scoring_last_highest(random_checkpoint: Path, study_folder: Path):
    """The real (random) model, with scores set so the last study in folder order is the likeliest.

    The AI thread loads an image and then predicts it; the image loader threads load others meanwhile,
    so the image last loaded is remembered per thread."""
    import dataclasses
    import threading

    from pneumoviewer.io.images import load_radiograph
    from pneumoviewer.model.inference import Predictor

    order = [path.stem for path in sorted(study_folder.rglob("*.dcm")) if path.name != "broken.dcm"]
    scores = {image_id: 0.1 + 0.8 * number / len(order) for number, image_id in enumerate(order)}
    inner = Predictor.cached(random_checkpoint)

    loaded = threading.local()

    class Scored:
        checkpoint = inner.checkpoint

        def predict(self, pixels, cancel=None):
            prediction = inner.predict(pixels, cancel=cancel)
            return dataclasses.replace(prediction, score=scores[loaded.image_id])

    def load_and_remember(path):
        loaded.image_id = Path(path).stem
        return load_radiograph(path)

    scored = Scored()

    return scored, load_and_remember, order[-1]


def open_and_wait(qtbot, window, folder: Path, reader_starts: bool = True) -> None:
    """Open `folder` and wait for the first case on screen.

    `reader_starts`: press a key at once (H, pan mode), as a reader who starts on the first case does;
    otherwise the screen follows the top of the worklist while scores arrive, and a test that keeps
    "the case on screen" would find another one there.
    """
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        window.controller.open_paths([folder])
    qtbot.waitUntil(lambda: window.case_view.image_id_on_canvas == window.controller.current_id, timeout=WAIT_MS)
    if reader_starts:
        QTest.keyClick(window, Qt.Key.Key_H)


def wait_for_predictions(qtbot, window) -> None:
    qtbot.waitUntil(lambda: all(row.score is not None for row in window.worklist_model.rows()), timeout=WAIT_MS)


def viewport_point(window, row: float, col: float) -> QPoint:
    """Where image pixel (row, col) is on the canvas viewport."""
    return window.canvas.view.mapViewToDevice(QPointF(col + 0.5, row + 0.5)).toPoint()


def drag(viewport, points: list[QPoint], button=Qt.MouseButton.LeftButton) -> None:
    """Press, move through `points` at a hand's pace (pyqtgraph drops moves under 1/60 s apart), release."""
    QTest.mousePress(viewport, button, Qt.KeyboardModifier.NoModifier, points[0])
    for point in points[1:]:
        QTest.qWait(20)
        QTest.mouseMove(viewport, point)
    QTest.qWait(20)
    QTest.mouseRelease(viewport, button, Qt.KeyboardModifier.NoModifier, points[-1])


def paint(window, row: int, cols: tuple[int, int]) -> None:
    """A brush or eraser drag along `row` from column cols[0] to cols[1] (the current mode's tool)."""
    viewport = window.canvas.viewport()
    drag(viewport, [viewport_point(window, row, col) for col in np.linspace(*cols, 5)])
