"""Which model a result came from, without importing torch: checkpoint file names and a fingerprint.

A stored prediction is reused only if it was made by the very same weights and card (the card holds
the inference settings), so the fingerprint hashes both files' bytes. It is cached by path, size and
mtime, so asking again for an unchanged model costs a `stat`.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")
_FINGERPRINTS: dict[tuple[Path, tuple[tuple[int, int], ...]], str] = {}
_LOCK = threading.Lock()


def checkpoint_paths(path: Path | str) -> tuple[Path, Path]:
    """(weights file, card file) for `path` given with or without its suffix."""
    path = Path(path)
    if path.suffix in _WEIGHT_SUFFIXES:
        return path, path.with_suffix(".json")
    if path.suffix == ".json":
        return path.with_suffix(".safetensors"), path
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def model_fingerprint(checkpoint: Path | str) -> str:
    """A hex digest of the weights and card bytes; raises OSError when either file cannot be read."""
    files = checkpoint_paths(Path(checkpoint).resolve())
    stats = tuple((file.stat().st_size, file.stat().st_mtime_ns) for file in files)
    key = (files[0], stats)
    with _LOCK:
        known = _FINGERPRINTS.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    fingerprint = digest.hexdigest()[:32]
    with _LOCK:
        _FINGERPRINTS[key] = fingerprint
    return fingerprint
