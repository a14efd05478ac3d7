"""Headers read before, kept so that reopening an unchanged folder costs a `stat` per file, not a DICOM parse.

An entry holds one file's `DicomMetadata` fields with the file's size, mtime, ctime and inode at the
moment it was read. It is used only while all four are the same: any tool that writes or replaces
the file changes them (the ctime and inode even when a copy keeps the mtime, `cp -p`, `rsync -a`),
so such a file is read again. A header that cannot be read is never kept: it is read (and reported)
every time.

The file is a checksum line, then JSON. It is trusted only whole: a wrong checksum (torn or damaged),
another format, another set of metadata fields or a rule version other than `HEADER_RULES` (how
`read_header` turns a header into metadata), or any entry of the wrong type or out of the sizes
`read_header` accepts, and the whole index is ignored and rebuilt by reading the files. It is written
atomically, so a crash leaves the previous index or the new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pneumoviewer.io import dicom
from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.io.dicom import GREYSCALE, MAX_PIXELS, MAX_SIDE, DicomMetadata
from pneumoviewer.pacing import paced

FORMAT_VERSION = 1
# Bump when `read_header` derives a field differently (a fallback, a new tag): older indexes are then ignored.
HEADER_RULES = 1
_FIELDS = tuple(field.name for field in dataclasses.fields(DicomMetadata) if field.name != "path")
_TEXT = {"sop_instance_uid", "photometric", "transfer_syntax"}  # always text; the other text fields may be None
_INTEGERS = {"rows", "columns", "bits_stored"}

FileStamp = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


def stamp_of(path: Path | str) -> FileStamp | None:
    """The file's stamp now; None when it cannot be stat'ed (whoever reads it next reports why)."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino


class HeaderIndex:
    """The headers of one opened folder or selection: those known from last time, and those listed now.

    `lookup` and `read` answer for one file and remember it as listed; `save` writes what was listed
    (files gone since are dropped). Not thread-safe: one scan uses it at a time.
    """

    def __init__(self, known: dict[str, tuple[FileStamp, dict[str, Any]]] | None = None) -> None:
        self._known = known or {}
        self._listed: dict[str, tuple[FileStamp, dict[str, Any]]] = {}

    @classmethod
    def load(cls, path: Path) -> HeaderIndex:
        """The index saved at `path`; an empty one when there is none or it is not to be trusted."""
        try:
            data = Path(path).read_bytes()
        except OSError:
            return cls()
        return cls(_parse(data))

    def lookup(self, path: Path) -> DicomMetadata | None:
        """The header of `path` if it was read before (last time or now) and the file is unchanged since."""
        key = os.path.abspath(path)
        entry = self._listed.get(key) or self._known.get(key)
        if entry is None:
            return None
        if stamp_of(key) != entry[0]:
            return None
        self._listed[key] = entry
        return DicomMetadata(path=path, **entry[1])

    def read(self, path: Path) -> DicomMetadata:
        """`read_header(path)`, remembered under the file's stamp taken before reading (a file
        written meanwhile then shows as changed next time). Raises `DicomError` as `read_header`."""
        stamp = stamp_of(os.path.abspath(path))
        metadata = dicom.read_header(path)  # the scan's own reader: one way of reading a header
        if stamp is not None:
            self.remember(metadata, stamp)
        return metadata

    def remember(self, metadata: DicomMetadata, stamp: FileStamp) -> None:
        """List a header read elsewhere (a child process of `folder_scan`) under the stamp its file had
        before it was read."""
        self._listed[os.path.abspath(metadata.path)] = (stamp, {name: getattr(metadata, name) for name in _FIELDS})

    @property
    def changed(self) -> bool:
        """Whether the files listed differ from those saved (read again, new or gone): worth saving."""
        return self._listed != self._known

    def save(self, path: Path) -> None:
        """Write what was listed, atomically; raises OSError (the previous index stays)."""
        # The same JSON as one `json.dumps` of the whole document, but encoded an entry at a time: one
        # call for 10,000 entries held the GIL for ~0.1 s in one go, a freeze of the window whose
        # indexing thread saves it.
        head = json.dumps({"format": FORMAT_VERSION, "rules": HEADER_RULES, "fields": list(_FIELDS)},
                          separators=(",", ":"))
        entries = ",".join(json.dumps(key) + ":" + json.dumps([*stamp, *(_plain(fields[name]) for name in _FIELDS)],
                                                              separators=(",", ":"))
                           for key, (stamp, fields) in paced(sorted(self._listed.items())))
        body = (head[:-1] + ',"entries":{' + entries + "}}").encode("utf-8")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, _checksum(body).encode("ascii") + b"\n" + body)


def _checksum(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _parse(data: bytes) -> dict[str, tuple[FileStamp, dict[str, Any]]]:
    """The entries of a saved index; empty unless every part of it is intact and of this version."""
    check, _, body = data.partition(b"\n")
    if check.decode("ascii", "replace") != _checksum(body):
        return {}
    try:
        document = json.loads(body)
        if (document["format"], document["rules"], document["fields"]) != (FORMAT_VERSION, HEADER_RULES,
                                                                           list(_FIELDS)):
            return {}
        known = {}
        for key, values in document["entries"].items():
            stamp, fields = values[:4], dict(zip(_FIELDS, values[4:], strict=True))
            if not isinstance(key, str) or not all(type(value) is int for value in stamp) or not _valid(fields):
                return {}
            spacing = fields["pixel_spacing_mm"]
            fields["pixel_spacing_mm"] = None if spacing is None else (float(spacing[0]), float(spacing[1]))
            known[key] = ((stamp[0], stamp[1], stamp[2], stamp[3]), fields)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return {}
    return known


def _valid(fields: dict[str, Any]) -> bool:
    """The types `read_header` gives, and the sizes it accepts (they bound what decoding allocates)."""
    for name, value in fields.items():
        if name in _INTEGERS:
            if type(value) is not int:
                return False
        elif name == "pixel_spacing_mm":
            if value is not None and not (isinstance(value, list) and len(value) == 2
                                          and all(type(side) in (int, float) and 0 < side < 10 for side in value)):
                return False
        elif not (isinstance(value, str) or (value is None and name not in _TEXT)):
            return False
    rows, columns = fields["rows"], fields["columns"]
    return (0 < rows <= MAX_SIDE and 0 < columns <= MAX_SIDE and rows * columns <= MAX_PIXELS
            and 1 <= fields["bits_stored"] <= 16 and fields["photometric"] in GREYSCALE)
