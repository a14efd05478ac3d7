"""The reviewed cases' SEG and overlay objects, kept ready to send: one outbox folder per session.

Sending twice must not send a case twice: a case's objects are written again (new SOP Instance UIDs,
a new version for the PACS) only when its read changed (status, mask or model); otherwise the files
already in the outbox, with the UIDs the push ledger knows, are what is sent, so nothing goes twice.
The outbox's record (`outbox.json`, atomic) holds each case's read as written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pneumoviewer.errors import CancelCheck, ProgressCallback, raise_if_cancelled
from pneumoviewer.pacs.nodes import PacsNode
from pneumoviewer.pacs.push import PushReport, push_objects

if TYPE_CHECKING:
    from pneumoviewer.review.case import Case

RECORD = "outbox.json"
KINDS = ("seg", "overlay")


@dataclass(frozen=True)
class OutboxObject:
    image_id: str
    display_id: str  # as the worklist names the case
    kind: str  # "seg" or "overlay"
    path: Path


def outbox_for(session_folder: Path, data_dir: Path | None = None) -> Path:
    """The outbox of the session opened on `session_folder`, in the per-user data folder."""
    from pneumoviewer.paths import user_data_dir

    digest = hashlib.sha256(str(Path(session_folder).resolve()).encode()).hexdigest()[:16]
    return (data_dir or user_data_dir()) / "pacs-outbox" / f"{Path(session_folder).name[:40]}-{digest}"


def prepare_outbox(cases: Sequence[Case], outbox: Path, model_version: str | None,
                   progress: ProgressCallback | None = None, cancel: CancelCheck | None = None) -> list[OutboxObject]:
    """The objects of every reviewed DICOM case, written only for cases whose read changed. Raises
    `review.export.ExportError` (a FileProblem) when one cannot be written."""
    from pneumoviewer.io.atomic import atomic_write_text
    from pneumoviewer.io.overlay import safe_file_stem
    from pneumoviewer.review.export import cases_to_export, export_dicom

    outbox.mkdir(parents=True, exist_ok=True)
    record_path = outbox / RECORD
    try:
        record: dict[str, str] = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}  # no record: every case is written (new objects), none is lost
    chosen = cases_to_export(cases)
    objects: list[OutboxObject] = []
    for done, case in enumerate(chosen, start=1):
        raise_if_cancelled(cancel)
        stem = safe_file_stem(case.image_id)
        paths = {kind: outbox / f"{stem}.{kind}.dcm" for kind in KINDS}
        read = _read_signature(case.status.value, case.export_mask(), model_version)
        if record.get(case.image_id) != read or not all(path.exists() for path in paths.values()):
            summary = export_dicom([case], outbox, outbox, model_version)
            if summary.skipped:  # not a DICOM image: no object can refer to it
                continue
            record[case.image_id] = read
            atomic_write_text(record_path, json.dumps(record, indent=1) + "\n")
        objects.extend(OutboxObject(case.image_id, case.display_id, kind, path) for kind, path in paths.items())
        if progress is not None:
            progress(done, len(chosen))
    return objects


def send_results(node: PacsNode, cases: Sequence[Case], outbox: Path, model_version: str | None,
                 data_dir: Path | None = None, progress: ProgressCallback | None = None,
                 cancel: CancelCheck | None = None) -> tuple[list[OutboxObject], PushReport]:
    """Prepare the outbox, then push it: objects sent before are not sent again, failed ones are."""
    objects = prepare_outbox(cases, outbox, model_version, cancel=cancel)
    report = push_objects(node, [item.path for item in objects], data_dir, progress, cancel)
    return objects, report


def _read_signature(status: str, mask: np.ndarray, model_version: str | None) -> str:
    digest = hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).hexdigest()
    return f"{status} {mask.shape[0]}x{mask.shape[1]} {digest} {model_version or 'manual'}"
