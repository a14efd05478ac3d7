"""The app's model in a child process (ui/model_runner.py): the same results as in this process, bad
images and a killed child fail one job each, a model that cannot load says why, closing stops it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from pneumoviewer.ui.app import application
from pneumoviewer.ui.model_queue import ModelQueue
from pneumoviewer.ui.model_runner import (
    CheckpointModel,
    ChildProcessModel,
    JobKind,
    ModelJob,
    ModelLoadError,
    run_job,
)
from pneumoviewer.ui.workers import WorkerPool

WAIT_MS = 120_000  # a child imports torch and loads the model: seconds, more on a loaded CI machine


@pytest.fixture
def siim_files(siim_dir: Path) -> list[Path]:
    return sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:3]


@pytest.fixture
def child(random_checkpoint: Path):
    model = ChildProcessModel(CheckpointModel(random_checkpoint).resolved())
    yield model
    model.close()


def _job(kind: JobKind, path: Path) -> ModelJob:
    return ModelJob(kind, path.stem, path, (0.14, 0.14))


def test_the_child_gives_what_this_process_computes(child: ChildProcessModel, random_checkpoint: Path,
                                                    siim_files: list[Path]) -> None:
    from pneumoviewer.model.inference import Predictor

    loaded = child.load(lambda: False)
    assert loaded.description.startswith(f"{random_checkpoint.name}, loaded in ")
    assert loaded.card["file"] == str(random_checkpoint.resolve()) and loaded.refused is None
    here = Predictor.cached(random_checkpoint)
    for path in siim_files:
        result = child.run(_job(JobKind.PREDICT, path), lambda: False)
        assert result is not None and result.error is None
        expected = run_job(here, loaded.model_key, _job(JobKind.PREDICT, path), lambda: False)
        assert result.value.prediction.score == pytest.approx(expected.prediction.score, abs=1e-6)
        np.testing.assert_array_equal(result.value.prediction.mask, expected.prediction.mask)
        assert result.value.lesions == expected.lesions and result.value.model_key == loaded.model_key
    heatmap = child.run(_job(JobKind.HEATMAP, siim_files[0]), lambda: False)
    assert heatmap is not None and heatmap.error is None
    np.testing.assert_allclose(heatmap.value, run_job(here, None, _job(JobKind.HEATMAP, siim_files[0]), lambda: False),
                               atol=1e-5)


def test_a_bad_image_fails_its_job_and_a_killed_child_fails_the_one_it_ran(
    child: ChildProcessModel, siim_files: list[Path], tmp_path: Path
) -> None:
    child.load(lambda: False)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"truncated")
    failed = child.run(_job(JobKind.PREDICT, broken), lambda: False)
    assert failed is not None and failed.error is not None and "broken.dcm" in failed.error
    assert child.run(_job(JobKind.PREDICT, siim_files[0]), lambda: False).error is None  # it goes on

    os.kill(child._process.pid, signal.SIGKILL)  # as the kernel's OOM killer would
    result = child.run(_job(JobKind.PREDICT, siim_files[1]), lambda: False)
    assert result is not None and result.error is not None and "the AI process stopped" in result.error
    assert not child.alive


def test_a_model_that_cannot_load_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "absent.safetensors"
    model = ChildProcessModel(CheckpointModel(None, bundled=missing))
    try:
        with pytest.raises(ModelLoadError, match="absent.safetensors"):
            model.load(lambda: False)
    finally:
        model.close()


def test_the_queue_restarts_a_killed_child_and_closing_stops_one_still_loading(
    qtbot, random_checkpoint: Path, siim_files: list[Path]
) -> None:
    application()
    pool = WorkerPool()
    queue = ModelQueue(pool, CheckpointModel(random_checkpoint))
    predicted, failed, loads = [], [], []
    queue.sigPredicted.connect(lambda image_id, finding: predicted.append(image_id))
    queue.sigJobFailed.connect(lambda image_id, reason: failed.append((image_id, reason)))
    queue.sigModelReady.connect(lambda description, refused: loads.append(description))
    queue.enqueue([_job(JobKind.PREDICT, siim_files[0])])
    qtbot.waitUntil(lambda: predicted == [siim_files[0].stem], timeout=WAIT_MS)
    model = queue._model
    assert isinstance(model, ChildProcessModel)

    os.kill(model._process.pid, signal.SIGKILL)
    queue.enqueue([_job(JobKind.PREDICT, path) for path in siim_files[1:]])
    qtbot.waitUntil(lambda: len(predicted) + len(failed) == len(siim_files), timeout=WAIT_MS)
    assert [image_id for image_id, _ in failed] == [siim_files[1].stem]  # the job the dead child had
    assert "the AI process stopped" in failed[0][1]
    assert predicted == [siim_files[0].stem, siim_files[2].stem] and len(loads) == 2  # started again
    qtbot.waitUntil(lambda: not queue.running, timeout=WAIT_MS)

    queue.use_model(CheckpointModel(random_checkpoint))
    queue.warm_up()  # a child starts loading...
    qtbot.waitUntil(lambda: queue.running, timeout=WAIT_MS)
    started = time.perf_counter()
    queue.close()  # ...and closing does not wait for its load
    assert pool.shutdown(30_000)
    assert time.perf_counter() - started < 10

