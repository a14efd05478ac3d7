"""The headless loop over many radiographs, shared by `pneumoviewer predict` and `evaluate`.

Files are found (folders recursively, DICOM by content), loaded one ahead in a background thread
so decoding overlaps the network, predicted, and yielded one by one; a file that cannot be read or
predicted is yielded as a `FileProblem` with its reason and the loop goes on. Imported by the
commands' `run` only: it loads the model's runtime (torch, ONNX Runtime).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.ai_scope import ai_scope_warning
from pneumoviewer.io.dicom import DicomError, DicomImage
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.io.images import load_radiograph
from pneumoviewer.model.cam import grad_cam
from pneumoviewer.model.card import CheckpointError
from pneumoviewer.model.inference import Prediction, Predictor
from pneumoviewer.model.postprocess import InferenceSettings


@dataclass(frozen=True)
class ImageFile:
    path: Path
    image_id: str | None  # from the folder scan's header read; None for files named directly


@dataclass(frozen=True)
class Predicted:
    path: Path
    image: DicomImage
    prediction: Prediction
    heat: np.ndarray | None  # Grad-CAM, when asked for
    timings: dict[str, float]  # load, pre, network, post (and cam): seconds
    ai_warning: str | None = None  # why the AI is not validated for this image: scored on request (io.ai_scope)

    @property
    def image_id(self) -> str:
        return self.image.metadata.sop_instance_uid


def collect_images(paths: Sequence[Path]) -> tuple[list[ImageFile], list[FileProblem]]:
    """Files named directly (DICOM, PNG or JPEG) and every DICOM under the folders named.

    Each file appears once, in the order given (folders sorted by path). Unreadable DICOMs found
    in folders and paths that do not exist come back as `FileProblem`.
    """
    files: list[ImageFile] = []
    skipped: list[FileProblem] = []
    seen: set[Path] = set()
    for path in map(Path, paths):
        if path.is_dir():
            scan = scan_folder(path)
            found = [ImageFile(header.path, header.sop_instance_uid) for header in scan.images]
            skipped.extend(scan.unreadable)
        elif path.is_file():
            found = [ImageFile(path, None)]
        else:
            skipped.append(FileProblem(path, "no such file or folder"))
            continue
        for image_file in found:
            key = image_file.path.resolve()
            if key not in seen:
                seen.add(key)
                files.append(image_file)
    return files, skipped


def open_predictor(model: Path | None) -> Predictor:
    """The model named on the command line, else the bundled one. Raises CheckpointError."""
    return Predictor.cached(model) if model is not None else Predictor.default()


def predict_files(
    predictor: Predictor,
    files: Sequence[ImageFile],
    settings: InferenceSettings,
    with_cam: bool = False,
    score_unvalidated: bool = False,
) -> Iterator[Predicted | FileProblem]:
    """Predict each file in turn, yielding its result or the reason it was skipped.

    An image the AI is not validated for (`io.ai_scope`) is skipped with that reason unless
    `score_unvalidated`; then it is predicted and its `ai_warning` says why it needed asking.
    """
    if not files:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pneumoviewer-load") as loader:
        upcoming: Future = loader.submit(_timed_load, files[0].path)
        for index, image_file in enumerate(files):
            current = upcoming
            if index + 1 < len(files):
                upcoming = loader.submit(_timed_load, files[index + 1].path)
            yield _predict_one(predictor, image_file.path, current, settings, with_cam, score_unvalidated)


def _predict_one(
    predictor: Predictor, path: Path, loading: Future, settings: InferenceSettings, with_cam: bool,
    score_unvalidated: bool,
) -> Predicted | FileProblem:
    try:
        image, load_seconds = loading.result()
        warning = ai_scope_warning(image.metadata)
        if warning and not score_unvalidated:
            return FileProblem(path, f"{warning}; not scored (--score-unvalidated scores it)")
        prediction = predictor.predict(image.pixels, settings=settings)
        timings = {"load": load_seconds, **prediction.timings}
        heat = None
        if with_cam:
            started = time.perf_counter()
            heat = grad_cam(predictor, image.pixels, target_mask=prediction.mask)
            timings["cam"] = time.perf_counter() - started
    except (DicomError, CheckpointError) as error:
        return FileProblem(path, error.reason)
    except Exception as error:  # noqa: BLE001 (one odd file, or a bug it triggers, must not end a long run)
        return FileProblem(path, f"could not be predicted ({type(error).__name__}: {error})")
    return Predicted(path, image, prediction, heat, timings, warning)


def _timed_load(path: Path) -> tuple[DicomImage, float]:
    started = time.perf_counter()
    image = load_radiograph(path)
    return image, time.perf_counter() - started


def latency_summary(totals: Sequence[float]) -> dict[str, float]:
    """Mean / median / 95th percentile of per-image seconds (load + pre + network + post)."""
    values = np.asarray(totals, dtype=np.float64)
    if values.size == 0:
        return {}
    return {
        "mean_s": float(values.mean()),
        "median_s": float(np.median(values)),
        "p95_s": float(np.percentile(values, 95)),
    }
