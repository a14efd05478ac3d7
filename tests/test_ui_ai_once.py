"""Each image goes through the network once per model while a folder is scored, whatever the reader
does meanwhile, and the status bar's AI counter counts images: the real window, real SIIM DICOMs and
a real (small, random-weights) model."""

from __future__ import annotations

import threading
from pathlib import Path

import ui_driver  # tests/ui_driver.py
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from ui_driver import NEGATIVES, POSITIVES, WAIT_MS, open_and_wait, wait_for_predictions

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder

IMAGES = POSITIVES + NEGATIVES  # the readable studies of study_folder


class HeldCountingPredictor:
    """The real model, counting its network runs; the first run waits until the test lets it go on,
    so the reader can act while the case on screen is being predicted."""

    def __init__(self, checkpoint: Path) -> None:
        from pneumoviewer.model.inference import Predictor

        self.inner = Predictor.cached(checkpoint)
        self.runs = 0
        self.first_running = threading.Event()
        self.go_on = threading.Event()
        self._lock = threading.Lock()

    def predict(self, pixels, cancel=None):
        with self._lock:
            self.runs += 1
        if not self.first_running.is_set():
            self.first_running.set()
            self.go_on.wait(WAIT_MS / 1000)
        return self.inner.predict(pixels, cancel=cancel)

    def __getattr__(self, name: str):  # Grad-CAM reads the network, its input size and lock from the predictor
        return getattr(self.inner, name)


def test_stepping_away_and_back_during_the_sweep_predicts_each_image_once_and_counts_images(
    qtbot, make_window, study_folder: Path, random_checkpoint: Path
) -> None:
    model = HeldCountingPredictor(random_checkpoint)
    window = make_window(lambda: model, random_checkpoint)
    controller = window.controller
    predicted: list[str] = []
    heatmaps: list[str] = []
    progress: list[tuple[int, int, str]] = []
    controller.model_queue.sigPredicted.connect(lambda image_id, _finding: predicted.append(image_id))
    controller.model_queue.sigHeatmap.connect(lambda image_id, _heatmap: heatmaps.append(image_id))
    controller.sigProgress.connect(lambda done, total, text: progress.append((done, total, text)))
    QTest.keyClick(window, Qt.Key.Key_G)  # the Grad-CAM overlay on: heatmap jobs share the queue

    open_and_wait(qtbot, window, study_folder)
    first = controller.current_id
    qtbot.waitUntil(model.first_running.is_set, timeout=WAIT_MS)  # the case on screen is in the network
    for _ in range(IMAGES - 1):  # the reader looks through the folder and comes back to the first case
        QTest.keyClick(window, Qt.Key.Key_Down)
    assert controller.current_id != first
    for _ in range(IMAGES - 1):
        QTest.keyClick(window, Qt.Key.Key_Up)
    assert controller.current_id == first
    model.go_on.set()

    wait_for_predictions(qtbot, window)
    qtbot.waitUntil(lambda: first in controller.heatmaps, timeout=WAIT_MS)  # Grad-CAM still works
    qtbot.waitUntil(lambda: not controller.model_queue.running, timeout=WAIT_MS)
    assert model.runs == IMAGES, "each image went through the network once"
    assert sorted(predicted) == sorted(row.image_id for row in window.worklist_model.rows())
    assert len(set(heatmaps)) == len(heatmaps) and first in heatmaps  # one Grad-CAM per case asked for
    counted = [(done, total) for done, total, text in progress if text.startswith("Predicting")]
    assert counted and all(total == IMAGES for _, total in counted), counted
    assert counted[-1] == (IMAGES, IMAGES)

    controller.predict_all()  # the reader asks for every case again (Ctrl+P): each runs once more
    qtbot.waitUntil(lambda: not controller.model_queue.running, timeout=WAIT_MS)
    assert model.runs == 2 * IMAGES
