"""Atomic file replacement: a crash, a kill or a full disk leaves the old file or the new one, never half.

Every file PneumoViewer writes for the user (annotation CSVs, session files, PNG masks, model
checkpoints) goes through here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data`: temporary file in the same folder, fsync, rename, folder fsync.

    The rename is atomic on POSIX and Windows; an existing file keeps its permissions. On any
    error (ENOSPC, read-only folder) the temporary file is removed and the old file is untouched.
    """
    atomic_write_chunks(path, (data,))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """`atomic_write_bytes` of `text` in UTF-8, written as given (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_chunks(path: str | os.PathLike[str], chunks: Iterable[bytes]) -> None:
    """`atomic_write_bytes` of the concatenated `chunks`, streamed: a file of a million rows is
    written without ever being held in memory whole. An error raised by `chunks` leaves the old file."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _mode_for(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual rw-r--r--."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return 0o644


def _sync_folder(folder: Path) -> None:
    if os.name != "posix":  # Windows cannot open a folder; its rename is already durable
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
