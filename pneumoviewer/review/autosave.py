"""The autosave file of a review session, kept in the per-user data directory, keyed by folder.

Layout: `<data dir>/sessions/<folder key>/index.json` holds the statuses (rewritten on a status
change, a few kB); `masks/<image id>.rle` holds one edited mask as challenge RLE (rewritten when
that case's mask changes; removed when it becomes empty). These writes are atomic (temp file +
fsync + rename), so a crash or SIGKILL at any moment leaves the previous or the new file, never
half of one; a full disk or a read-only folder raises `SessionSaveError` and keeps the previous
file. `predictions.jsonl` keeps the AI results apart from the reviewer's work: it is appended to,
and each line is checked when read (see `prediction_store`). `headers.index` keeps the headers of
the folder's files as last read, so an unchanged folder reopens without parsing them again (see
`io.header_index`); it is only a cache: lost or damaged, the files are read again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from pneumoviewer.errors import FileProblem
from pneumoviewer.io.atomic import atomic_write_text
from pneumoviewer.io.rle import RleConvention, RleError, decode, encode
from pneumoviewer.paths import user_data_dir
from pneumoviewer.review.case import ReviewStatus
from pneumoviewer.review.prediction_store import JOURNAL_NAME, PredictionJournal, StoredPrediction

FORMAT_VERSION = 1
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")


class SessionSaveError(FileProblem, OSError):
    """Autosave could not write; the previous session file is intact."""


class SessionLoadError(FileProblem, ValueError):
    """An autosave file is unreadable: it is ignored (an unreadable index is set aside, renamed)."""


def session_key(folder: Path) -> str:
    """A stable directory name for a folder: readable tail plus a hash of the full path."""
    resolved = str(Path(folder).expanduser().resolve())
    digest = hashlib.sha256(resolved.encode("utf-8")).hexdigest()[:16]
    tail = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(resolved).name)[:40] or "root"
    return f"{tail}-{digest}"


class SessionStore:
    def __init__(self, folder: Path, data_dir: Path | None = None) -> None:
        self.folder = Path(folder)
        base = Path(data_dir) if data_dir is not None else user_data_dir()
        self.directory = base / "sessions" / session_key(self.folder)
        self.index_path = self.directory / "index.json"
        self.masks_dir = self.directory / "masks"
        self.predictions = PredictionJournal(self.directory / JOURNAL_NAME)
        self.headers_path = self.directory / "headers.index"

    def mask_path(self, image_id: str) -> Path:
        if _SAFE_NAME.match(image_id) and image_id not in (".", ".."):
            return self.masks_dir / f"{image_id}.rle"
        return self.masks_dir / f"{hashlib.sha256(image_id.encode('utf-8')).hexdigest()}.rle"

    def save_statuses(self, statuses: dict[str, ReviewStatus]) -> None:
        document = {
            "format": FORMAT_VERSION,
            "folder": str(self.folder.expanduser().resolve()),
            "saved": datetime.now(UTC).isoformat(timespec="seconds"),
            "statuses": {image_id: ReviewStatus(status).value for image_id, status in statuses.items()},
        }
        self._write(self.index_path, json.dumps(document, indent=1, sort_keys=True) + "\n")

    def save_mask(self, image_id: str, mask: np.ndarray | None) -> None:
        path = self.mask_path(image_id)
        if mask is None or not mask.any():
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise SessionSaveError(path, _reason(error)) from error
            return
        rows, columns = mask.shape
        self._write(path, f"{image_id}\n{rows} {columns}\n{encode(mask, RleConvention.RELATIVE)}\n")

    def append_prediction(self, entry: StoredPrediction) -> None:
        try:
            self.predictions.append(entry)
        except OSError as error:
            raise SessionSaveError(self.predictions.path, _reason(error)) from error

    def load_statuses(self) -> dict[str, ReviewStatus]:
        """The statuses saved for this folder; empty if nothing was. Raises SessionLoadError if corrupt."""
        statuses: dict[str, ReviewStatus] = {}
        if self.index_path.exists():
            try:
                document = json.loads(self.index_path.read_text(encoding="utf-8"))
                statuses = {key: ReviewStatus(value) for key, value in document["statuses"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                kept = self._set_aside(self.index_path)
                raise SessionLoadError(
                    self.index_path, f"the saved statuses are unreadable ({error}); kept as {kept.name}"
                ) from error
        return statuses

    def saved_mask_names(self) -> set[str]:
        """The names of the mask files saved (one listing: a session of 10,000 images holds a few)."""
        try:
            return {entry.name for entry in os.scandir(self.masks_dir) if entry.name.endswith(".rle")}
        except OSError:  # none saved yet (or unreadable: each mask then reads as missing, as before)
            return set()

    def load_mask(self, image_id: str, shape: tuple[int, int]) -> np.ndarray | None:
        path = self.mask_path(image_id)
        if not path.exists():
            return None
        try:
            saved_id, size, text = path.read_text(encoding="utf-8").split("\n")[:3]
            saved_shape = tuple(int(value) for value in size.split())
            if saved_id != image_id or saved_shape != tuple(shape):
                raise SessionLoadError(path, f"the saved mask is for {saved_id} {saved_shape}, not {image_id} {shape}")
            return decode(text, shape, RleConvention.RELATIVE)
        except (OSError, ValueError, RleError) as error:
            if isinstance(error, SessionLoadError):
                raise
            raise SessionLoadError(path, f"the saved mask is unreadable ({error})") from error

    @staticmethod
    def _set_aside(path: Path) -> Path:
        """Move an unreadable file out of the way so the next save does not destroy it."""
        kept = path.with_name(f"{path.name}.unreadable-{datetime.now():%Y%m%d-%H%M%S}")
        try:
            path.replace(kept)
        except OSError:
            return path
        return kept

    def _write(self, path: Path, text: str) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
        except OSError as error:
            raise SessionSaveError(path, _reason(error)) from error


def _reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "cannot autosave: the disk is full (your work is kept in memory; free some space)"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "cannot autosave: the folder is read-only or not writable"
    return f"cannot autosave: {error.strerror or error}"
