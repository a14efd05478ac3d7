"""The UI's building blocks on their own: workers, the AI queue order, the worklist model, the mask layer."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QItemSelectionModel, Qt

from pneumoviewer.ui.actions import ACTION_SPECS
from pneumoviewer.ui.app import application
from pneumoviewer.ui.image_view import MaskLayer, mask_outline
from pneumoviewer.ui.model_queue import ModelQueue
from pneumoviewer.ui.model_runner import AiFinding, JobKind, ModelJob
from pneumoviewer.ui.workers import Progress, Worker, WorkerPool
from pneumoviewer.ui.worklist import (
    SCORE_COLUMN,
    WorklistModel,
    WorklistRow,
)
from pneumoviewer.ui.worklist_table import WorklistTable


@pytest.fixture
def pool(qtbot):
    application()
    pool = WorkerPool()
    yield pool
    assert pool.shutdown(10_000)


def test_worker_reports_progress_results_and_errors_on_the_gui_thread(qtbot, pool: WorkerPool) -> None:
    def count(to: int):
        for number in range(1, to + 1):
            yield Progress(number, to, f"step {number}", result=number * 10)
        return "done"

    worker = Worker(count, 3)
    progress, yielded, threads = [], [], []
    worker.sigProgress.connect(lambda done, total, text: progress.append((done, total, text)))
    worker.sigYielded.connect(lambda value: (yielded.append(value), threads.append(threading.current_thread())))
    with qtbot.waitSignal(worker.sigFinished, timeout=10_000) as finished:
        pool.start(worker)
    assert finished.args == ["done"]
    assert progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert yielded == [10, 20, 30] and set(threads) == {threading.main_thread()}

    failing = Worker(lambda: 1 / 0)
    with qtbot.waitSignal(failing.sigErrored, timeout=10_000) as errored:
        pool.start(failing)
    assert isinstance(errored.args[0], ZeroDivisionError)


def test_cancel_stops_a_generator_worker_between_steps(qtbot, pool: WorkerPool) -> None:
    release = threading.Event()
    steps = []

    def slow():
        for number in range(100):
            release.wait(5)
            steps.append(number)
            yield Progress(number, 100)

    worker = Worker(slow)
    finished = []
    worker.sigFinished.connect(finished.append)
    with qtbot.waitSignal(worker.sigAborted, timeout=10_000):
        pool.start(worker)
        worker.cancel()
        release.set()
    assert len(steps) <= 2 and not finished
    qtbot.waitUntil(lambda: not pool.running())


def test_progress_text_and_cancel_keywords_reach_plain_functions(qtbot, pool: WorkerPool) -> None:
    def export(items: int, progress, cancel):
        for done in range(1, items + 1):
            progress(done, items)
        return cancel()

    worker = Worker(export, 2, pass_cancel=True, progress_text="Exporting")
    texts = []
    worker.sigProgress.connect(lambda done, total, text: texts.append(text))
    with qtbot.waitSignal(worker.sigFinished, timeout=10_000) as finished:
        pool.start(worker)
    assert finished.args == [False]
    qtbot.waitUntil(lambda: len(texts) == 2)
    assert texts == ["Exporting 1 of 2", "Exporting 2 of 2"]


def test_the_case_on_screen_jumps_the_ai_queue(qtbot, pool: WorkerPool, random_checkpoint: Path, siim_dir: Path) -> None:
    from pneumoviewer.model.inference import Predictor

    files = sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:4]
    model_may_load = threading.Event()

    def slow_model():
        model_may_load.wait(10)
        return Predictor.cached(random_checkpoint)

    queue = ModelQueue(pool, slow_model)
    order = []
    queue.sigPredicted.connect(lambda image_id, finding: order.append((image_id, finding)))
    jobs = [ModelJob(JobKind.PREDICT, path.stem, path, (0.14, 0.14)) for path in files]
    queue.enqueue(jobs)
    queue.prioritise([jobs[3]])
    assert [job.image_id for job in queue.pending()] == [files[i].stem for i in (3, 0, 1, 2)]
    model_may_load.set()
    qtbot.waitUntil(lambda: len(order) == 4, timeout=60_000)
    assert [image_id for image_id, _ in order] == [files[i].stem for i in (3, 0, 1, 2)]
    finding: AiFinding = order[0][1]
    assert finding.prediction.mask.shape == (1024, 1024)
    assert finding.lesions.area_px == int(finding.prediction.mask.sum())
    qtbot.waitUntil(lambda: not queue.running)


def _rows() -> list[WorklistRow]:
    return [
        WorklistRow("a", "Case 1", Path("a.dcm"), age="70", status="unreviewed"),
        WorklistRow("b", "Case 2", Path("b.dcm"), age="30", score=0.2, status="accepted"),
        WorklistRow("c", "Case 3", Path("c.dcm"), age="50", score=0.9, status="unreviewed"),
    ]


def test_worklist_sorts_by_score_keeps_the_selection_and_filters_by_status(qtbot) -> None:
    application()
    model = WorklistModel()
    table = WorklistTable(model)
    qtbot.addWidget(table)
    model.set_rows(_rows())
    ids = lambda: [model.image_id_at(row) for row in range(model.rowCount())]
    assert ids() == ["c", "b", "a"]  # highest score first, unscored last
    table.selectionModel().setCurrentIndex(
        model.index(model.row_of("b"), 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
    )
    model.update_row("a", score=0.95)
    assert ids() == ["c", "b", "a"]  # the order refreshes a moment later, not on every score
    qtbot.waitUntil(lambda: ids() == ["a", "c", "b"], timeout=5_000)
    assert model.image_id_at(table.selectionModel().currentIndex().row()) == "b"
    table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
    assert ids() == ["b", "c", "a"]
    model.set_statuses(frozenset({"unreviewed"}))
    assert sorted(ids()) == ["a", "c"]
    assert model.row_of("b") == -1 and model.row("b").score == 0.2  # hidden, still listed
    model.set_statuses(None)
    assert model.data(model.index(model.row_of("b"), SCORE_COLUMN)) == "0.20"


def test_mask_layer_rewrites_only_the_dirty_rectangle_of_the_buffer_its_image_shares(qtbot) -> None:
    application()
    layer = MaskLayer((0, 255, 0))
    mask = np.zeros((64, 64), dtype=bool)
    layer.set_mask(mask)
    layer.render()
    buffer = layer.image
    mask[10:20, 30:40] = True
    mask[50, 50] = True  # outside the dirty rect: must not be drawn yet
    layer.update_region(mask, (10, 20, 30, 40))
    assert layer.image is buffer
    assert (buffer[10:20, 30:40, 3] == 255).all() and buffer[50, 50, 3] == 0
    # The QImage reads the same memory: no copy, no re-render needed.
    assert int(np.frombuffer(layer.qimage.constBits(), np.uint8, count=1).ctypes.data) == buffer.ctypes.data


def test_mask_outline_is_the_border_band_of_each_region() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[5:15, 5:15] = True
    outline = mask_outline(mask, width=2)
    assert outline[5, 5:15].all() and outline[6, 5:15].all() and not outline[7:13, 7:13].any()
    assert not (outline & ~mask).any()


def test_every_shortcut_belongs_to_one_action() -> None:
    keys = Counter(key for spec in ACTION_SPECS for key in spec.shortcuts)
    assert [key for key, count in keys.items() if count > 1] == []
    assert len({spec.name for spec in ACTION_SPECS}) == len(ACTION_SPECS)


def test_run_app_opens_the_demo_studies_and_returns_the_exit_code(qtbot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QApplication

    from pneumoviewer.ui.app import run_app
    from pneumoviewer.ui.main_window import MainWindow

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # the demo's autosave and recent list stay in the test
    seen = {}

    def exec_until_opened(self) -> int:
        window = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible())
        qtbot.waitUntil(lambda: window.controller.session is not None, timeout=30_000)
        seen["cases"] = len(window.controller.session)
        seen["title"] = window.windowTitle()
        window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", exec_until_opened)
    assert run_app([], demo=True) == 0
    assert seen["cases"] == 6 and "demo" in seen["title"]


def test_run_app_without_a_display_says_so_instead_of_aborting(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import sys

    from pneumoviewer.ui.app import run_app

    if not sys.platform.startswith("linux"):
        pytest.skip("displays are always there outside Linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert run_app([], demo=True) == 2
    assert "no display found" in capsys.readouterr().err


def test_model_card_dialog_shows_the_validation_figures_first(qtbot) -> None:
    from pneumoviewer.ui.dialogs import ModelCardDialog

    application()
    card = {"file": "default.safetensors", "network": {"encoder": "mobilenet_v2"},
            "metrics": {"roc_auc": 0.9251628388952332, "validation_ids": [f"id{n}" for n in range(300)]}}
    dialog = ModelCardDialog(card, None)
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert "not a medical device" in text
    assert text.index("roc auc") < text.index("encoder") and "300 values: id0, id1, id2, …" in text
    assert "0.9252" in text and "0.92516" not in text  # figures to four digits, not a float's seventeen
    missing = ModelCardDialog(None, "model file not found")
    qtbot.addWidget(missing)
    assert "model file not found" in missing.text.toPlainText()


def test_the_progress_callback_stops_a_function_that_has_no_cancel_of_its_own(qtbot, pool: WorkerPool) -> None:
    proceed = threading.Event()
    calls = []

    def scan(progress):
        for done in range(1, 1001):
            calls.append(done)
            progress(done, 1000)
            proceed.wait(5)
        return "finished"

    worker = Worker(scan, progress_text="Indexing")
    with qtbot.waitSignal(worker.sigAborted, timeout=10_000):
        pool.start(worker)
        qtbot.waitUntil(lambda: bool(calls))
        worker.cancel()
        proceed.set()
    assert len(calls) <= 2


def test_batched_items_reach_the_gui_thread_while_the_worker_is_still_busy(qtbot, pool: WorkerPool) -> None:
    proceed = threading.Event()
    batches: list[tuple[list[int], bool]] = []

    def read_slowly(found):
        found(1)
        found(2)
        proceed.wait(10)  # the next file takes long: the first two must not wait for it
        found(3)
        return "indexed"

    worker = Worker(read_slowly, batch_keyword="found")
    worker.sigYielded.connect(lambda batch: batches.append((batch, threading.current_thread() is threading.main_thread())))
    finished = []
    worker.sigFinished.connect(lambda result: finished.append((result, [b for b, _ in batches])))
    pool.start(worker)
    qtbot.waitUntil(lambda: batches == [([1, 2], True)], timeout=5_000)
    proceed.set()
    qtbot.waitUntil(lambda: bool(finished), timeout=5_000)
    assert finished == [("indexed", [[1, 2], [3]])]  # the last items arrive before the result
