"""`pneumoviewer --self-test`: prove an installation or bundle works end to end, without a window.

Loads a demo DICOM, runs the model and Grad-CAM on it, writes and re-reads the RLE CSV, and starts
Qt offscreen with the app's icon and UI module. Each step prints one line as it finishes, so a
failing bundle shows how far it got. Used by packaging/build.sh as the bundle's smoke test.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import numpy as np

from pneumoviewer import __version__
from pneumoviewer.errors import FileProblem
from pneumoviewer.paths import default_model_path, demo_dir, icon_path

CSV_NAME = "self-test-rle.csv"


class SelfTestError(FileProblem):
    """A step failed for a reason the user can act on; `path` names the file involved."""


def find_demo_image(folder: Path | None = None) -> Path:
    """The first demo DICOM (by name) under `folder`, else its first image file of any kind."""
    folder = folder if folder is not None else demo_dir()
    if not folder.is_dir():
        raise SelfTestError(folder, "the demo folder is missing from this installation")
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    dicoms = [path for path in files if path.suffix.lower() in (".dcm", ".dicom")]
    others = [path for path in files if path.suffix.lower() not in (".md", ".txt", ".csv", ".json")]
    if dicoms or others:
        return (dicoms or others)[0]
    raise SelfTestError(folder, "no demo study found (expected a .dcm file)")


def run_self_test(
    image: Path | None = None,
    model: Path | None = None,
    keep: bool = False,
    out: TextIO | None = None,
) -> Path:
    """Run every step, printing a summary line per step to `out` (stdout); returns the RLE CSV written.

    Raises SelfTestError, naming the file and the problem, on the first failure (a bug elsewhere
    propagates as itself). The CSV's folder is deleted afterwards unless `keep`.
    """
    started = time.perf_counter()
    out = out if out is not None else sys.stdout
    print(f"PneumoViewer {__version__} self-test (Python {sys.version.split()[0]}, {sys.platform})", file=out)
    image = image if image is not None else find_demo_image()
    model = model if model is not None else default_model_path()
    with _step("image", out) as report:
        from pneumoviewer.io.dicom import DicomError
        from pneumoviewer.io.images import load_radiograph

        try:
            radiograph = load_radiograph(image)
        except DicomError as error:
            raise SelfTestError(error.path, error.reason) from error
        meta = radiograph.metadata
        spacing = f", {meta.pixel_spacing_mm[0]:.3f} mm/px" if meta.pixel_spacing_mm else ""
        report(f"{image.name}: {meta.columns}x{meta.rows} {meta.modality or '?'} {meta.view_position or ''}{spacing}")
    with _step("model", out) as report:
        if not model.is_file():
            raise SelfTestError(model, "the model file is missing from this installation")
        import torch

        from pneumoviewer.model.card import CheckpointError
        from pneumoviewer.model.inference import Predictor

        try:
            predictor = Predictor(model)
        except CheckpointError as error:
            raise SelfTestError(error.path, error.reason) from error
        network = predictor.card.network
        report(f"{model.name}: {network.encoder} at {network.input_size} px on {predictor.device} "
               f"({predictor.runtime}), torch {torch.__version__}")
    with _step("prediction", out) as report:
        from pneumoviewer.review.case import lesion_stats

        prediction = predictor.predict(radiograph.pixels)
        _check_image_array(prediction.probability, radiograph.pixels.shape, "probability map")
        stats = lesion_stats(prediction.mask, meta.pixel_spacing_mm)
        area = "" if stats.area_cm2 is None else f" = {stats.area_cm2:.1f} cm²"
        report(f"score {prediction.score:.3f}, mask {stats.area_px:,} px{area}")
    with _step("grad-cam", out) as report:
        from pneumoviewer.model.cam import grad_cam

        heatmap = grad_cam(predictor, radiograph.pixels)
        _check_image_array(heatmap, radiograph.pixels.shape, "Grad-CAM heatmap")
        peak_row, peak_col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
        report(f"{heatmap.shape[1]}x{heatmap.shape[0]}, peak at row {peak_row}, column {peak_col}")
    output_dir = Path(tempfile.mkdtemp(prefix="pneumoviewer-self-test-"))
    try:
        with _step("rle csv", out) as report:
            csv_path = _write_and_verify_csv(output_dir, meta.sop_instance_uid, prediction.mask)
            rows = len(csv_path.read_text(encoding="utf-8").splitlines()) - 1
            report(f"{csv_path} ({rows} row{'s' if rows != 1 else ''}, read back identical)")
        with _step("qt", out) as report:
            report(_check_qt())
    finally:
        if not keep:
            shutil.rmtree(output_dir, ignore_errors=True)
    print(f"self-test passed in {time.perf_counter() - started:.1f} s", file=out)
    return csv_path


@contextmanager
def _step(name: str, out: TextIO) -> Iterator[Callable[[str], None]]:
    started = time.perf_counter()
    details: list[str] = []
    try:
        yield details.append
    except BaseException:
        print(f"  {name:<11}FAILED", file=out, flush=True)
        raise
    print(f"  {name:<11}{'; '.join(details)}  [{time.perf_counter() - started:.2f} s]", file=out, flush=True)


def _check_image_array(array: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    if array.shape != shape:
        raise SelfTestError("self-test", f"the {what} is {array.shape}, not the image's {shape}")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise SelfTestError("self-test", f"the {what} has values outside [0, 1]")


def _write_and_verify_csv(folder: Path, image_id: str, mask: np.ndarray) -> Path:
    from pneumoviewer.io.annotations import (
        AnnotationError,
        read_annotation_masks,
        write_annotation_masks,
    )

    csv_path = folder / CSV_NAME
    try:
        write_annotation_masks(csv_path, {image_id: mask})
        read_back = read_annotation_masks(csv_path, shape=mask.shape)
    except (AnnotationError, OSError) as error:
        raise SelfTestError(csv_path, getattr(error, "reason", None) or str(error)) from error
    if not np.array_equal(read_back.get(image_id, np.zeros_like(mask)), mask):
        raise SelfTestError(csv_path, "the mask read back from the CSV differs from the one written")
    return csv_path


def _check_qt() -> str:
    """Qt starts offscreen, renders the app icon, and the main window's modules import (no window is shown)."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6 import __version__ as pyside_version
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    import pneumoviewer.ui.main_window  # noqa: F401 (the bundle must carry the whole UI and its imports)

    _app = QApplication.instance() or QApplication([sys.argv[0]])
    for path in (icon_path(), icon_path(16)):
        if QIcon(str(path)).pixmap(32, 32).isNull():
            raise SelfTestError(path, "Qt could not draw the application icon (image plugins missing?)")
    return f"PySide6 {pyside_version} offscreen, icon (SVG + PNG) drawn, main window module imported"
