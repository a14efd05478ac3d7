"""AI results kept with a session, so reopening a folder does not run the network on it again.

One JSON line per result in `<session dir>/predictions.jsonl`, appended as each result arrives:
appending costs tens of microseconds, where rewriting one file of a thousand results per result
would grow quadratically. The later line for an image supersedes an earlier one; the journal is
rewritten (atomically) only when it holds such dead lines, at restore. There is no fsync: a power
cut may lose the last results, which only means predicting them again.

Results are kept per image and model: switching back to a model (a rollback after fine-tuning, say)
finds its results still there. Only the results of the `KEPT_MODELS` models stored most recently are
kept; older models' lines are dropped at the next rewrite.

A line is trusted only when all of this holds, otherwise it is dropped and the image predicted:
- its checksum matches the rest of the line (a torn write or a flipped bit anywhere fails it);
- it was made by the same model (the caller's model key: weights + card, see `model.identity`);
- the image file is the same: path, size and mtime (what any tool that writes the file changes)
  and a digest of its content (what a copy that keeps the mtime, `cp -p`/`rsync -a`/a restored
  backup, does not keep), see `FileIdentity`;
- its mask decodes as valid RLE for the image's shape.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pneumoviewer.io.atomic import atomic_write_text
from pneumoviewer.io.rle import RleConvention, decode, encode

FORMAT_VERSION = 1
JOURNAL_NAME = "predictions.jsonl"
# The content digest reads the file's first, middle and last block of this size (the whole file
# when it is smaller than three). The first block holds the DICOM header (UIDs, dates, size,
# transfer syntax): a different file put in place changes it. The other two fall in the pixel data.
# Reading a bounded sample keeps the cost per file fixed: on the 1,074 SIIM files (~140 kB each)
# it is 0.09 s with the page cache warm against 0.31 s for whole files, and a folder of 20 MB
# uncompressed radiographs costs the same per file instead of 400 times more.
CONTENT_BLOCK = 16 * 1024
KEPT_MODELS = 4


@dataclass(frozen=True)
class FileIdentity:
    path: str  # absolute, as opened (not resolved: resolving walks every folder of a deep path)
    size: int
    mtime_ns: int
    content: str  # blake2b of the size and the sampled blocks (see CONTENT_BLOCK)

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        """The identity of the file at `path` now; raises OSError if it cannot be read."""
        absolute = os.path.abspath(path)
        with open(absolute, "rb", buffering=0) as stream:
            stat = os.fstat(stream.fileno())
            content = _content_digest(stream, stat.st_size)
        return cls(absolute, stat.st_size, stat.st_mtime_ns, content)

    def matches(self, path: Path) -> bool:
        """Whether the file at `path` is still this one; its content is read only if the stat agrees."""
        absolute = os.path.abspath(path)
        if absolute != self.path:
            return False
        try:
            with open(absolute, "rb", buffering=0) as stream:
                stat = os.fstat(stream.fileno())
                if (stat.st_size, stat.st_mtime_ns) != (self.size, self.mtime_ns):
                    return False
                return _content_digest(stream, stat.st_size) == self.content
        except OSError:
            return False


def _content_digest(stream: BinaryIO, size: int) -> str:
    digest = hashlib.blake2b(str(size).encode("ascii"), digest_size=16)
    if size <= 3 * CONTENT_BLOCK:
        digest.update(stream.read())
    else:
        for offset in (0, (size - CONTENT_BLOCK) // 2, size - CONTENT_BLOCK):
            stream.seek(offset)
            digest.update(stream.read(CONTENT_BLOCK))
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredPrediction:
    image_id: str
    file: FileIdentity
    model_key: str
    score: float
    positive: bool
    shape: tuple[int, int]
    mask_rle: str  # relative RLE of the whole mask, "-1" when empty

    @classmethod
    def of(
        cls, image_id: str, file: FileIdentity, model_key: str, score: float, positive: bool, mask: np.ndarray
    ) -> StoredPrediction:
        rows, columns = mask.shape
        return cls(image_id, file, model_key, float(score), bool(positive), (int(rows), int(columns)),
                   encode(mask, RleConvention.RELATIVE))

    def mask(self) -> np.ndarray:
        """The stored mask; raises RleError when the text is not a mask of `shape`."""
        return decode(self.mask_rle, self.shape, RleConvention.RELATIVE)

    def to_line(self) -> str:
        payload = {
            "format": FORMAT_VERSION,
            "image": self.image_id,
            "path": self.file.path,
            "size": self.file.size,
            "mtime_ns": self.file.mtime_ns,
            "content": self.file.content,
            "model": self.model_key,
            "score": self.score,
            "positive": self.positive,
            "shape": list(self.shape),
            "mask": self.mask_rle,
        }
        return json.dumps({"check": _checksum(payload), **payload}, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> StoredPrediction:
        """Parse one journal line; raises ValueError for anything but an intact line of this format."""
        try:
            payload = json.loads(line)
            check = payload.pop("check")
        except (ValueError, TypeError, AttributeError, KeyError) as error:
            raise ValueError(f"not a stored result ({error.__class__.__name__})") from error
        if check != _checksum(payload):
            raise ValueError("its checksum does not match (damaged or half written)")
        if payload.get("format") != FORMAT_VERSION:
            raise ValueError(f"format {payload.get('format')!r}, not {FORMAT_VERSION}")
        try:
            shape = tuple(payload["shape"])
            fields = (payload["image"], payload["path"], payload["size"], payload["mtime_ns"], payload["content"],
                      payload["model"], payload["score"], payload["positive"], payload["mask"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"a field is missing ({error})") from error
        image_id, path, size, mtime_ns, content, model_key, score, positive, mask_rle = fields
        typed = (isinstance(image_id, str) and isinstance(path, str) and isinstance(content, str)
                 and isinstance(model_key, str) and isinstance(mask_rle, str) and isinstance(positive, bool)
                 and all(type(value) is int for value in (size, mtime_ns, *shape)) and len(shape) == 2
                 and type(score) in (int, float) and 0.0 <= score <= 1.0)
        if not typed:
            raise ValueError("a field has the wrong type or range")
        return cls(image_id, FileIdentity(path, size, mtime_ns, content), model_key, float(score), positive,
                   (shape[0], shape[1]), mask_rle)


def _checksum(payload: dict[str, object]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True)
class JournalContents:
    latest: dict[tuple[str, str], StoredPrediction]  # (image id, model key) -> its last intact line
    dead_lines: int  # superseded, damaged or too old a model's lines: the journal is worth rewriting
    damaged: list[str]  # "line N: reason" for each damaged line


class PredictionJournal:
    """The append-only file of stored results; callers serialise access (the session's lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, entry: StoredPrediction) -> None:
        """Raises OSError when the line cannot be written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(entry.to_line())

    def read(self) -> JournalContents:
        """Every intact line of the `KEPT_MODELS` models stored last, the last one per image and model
        winning; raises OSError if the file cannot be read."""
        latest: dict[tuple[str, str], StoredPrediction] = {}
        last_line_of_model: dict[str, int] = {}
        damaged: list[str] = []
        dead = 0
        try:
            with open(self.path, encoding="utf-8", errors="replace") as stream:
                lines = stream.readlines()
        except FileNotFoundError:
            return JournalContents({}, 0, [])
        for number, line in enumerate(lines, 1):
            try:
                entry = StoredPrediction.from_line(line)
            except ValueError as error:
                damaged.append(f"line {number}: {error}")
                dead += 1
                continue
            key = (entry.image_id, entry.model_key)
            dead += key in latest
            latest[key] = entry
            last_line_of_model[entry.model_key] = number
        kept_models = set(sorted(last_line_of_model, key=last_line_of_model.__getitem__)[-KEPT_MODELS:])
        kept = {key: entry for key, entry in latest.items() if key[1] in kept_models}
        return JournalContents(kept, dead + len(latest) - len(kept), damaged)

    def rewrite(self, entries: list[StoredPrediction]) -> None:
        """Replace the journal by `entries` atomically; raises OSError (the old journal stays)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, "".join(entry.to_line() for entry in entries))
