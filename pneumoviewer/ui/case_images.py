"""Decoded images by image id: the case on screen loaded on a worker, the next one decoded ahead.

`CaseImages` is a QObject with no widgets that the review controller owns; its cache is the one
record of what is decoded (the controller's `images`). Decoding runs on the thread pool, so the window
never waits for pydicom; its signals are emitted on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from pneumoviewer.ui import tasks
from pneumoviewer.ui.lru_cache import LruCache
from pneumoviewer.ui.workers import Worker, WorkerPool


class CaseImages(QObject):
    sigLoaded = Signal(str, object)  # image_id, DicomImage: decoded and cached (asked for or prefetched)
    sigFailed = Signal(str)  # why the image last asked for by `load` cannot be shown

    def __init__(self, pool: WorkerPool, size: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.cache: LruCache[str, Any] = LruCache(size)
        self._loader: Worker | None = None

    def load(self, image_id: str, path: Path | None) -> None:
        """Decode the image to show, instead of the one asked for before."""
        self.cancel()
        self._loader = worker = Worker(tasks.load_image, image_id, path)
        worker.sigFinished.connect(self._loaded)
        worker.sigErrored.connect(self._failed)
        self.pool.start(worker)

    def prefetch(self, image_id: str, path: Path | None) -> None:
        """Decode the next case while this one is read, so stepping on is instant."""
        if image_id in self.cache:
            return
        worker = Worker(tasks.load_image, image_id, path)
        worker.sigFinished.connect(self._loaded)  # errors show when the user gets there
        self.pool.start(worker)

    def cancel(self) -> None:
        if self._loader is not None:
            self._loader.cancel()

    @Slot(object)
    def _loaded(self, loaded: tasks.LoadedImage) -> None:
        self.cache.put(loaded.image_id, loaded.image)
        self.sigLoaded.emit(loaded.image_id, loaded.image)

    @Slot(object)
    def _failed(self, error: Exception) -> None:
        self.sigFailed.emit(str(error))
