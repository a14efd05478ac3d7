"""Send SEG / overlay objects to a node, each once: a ledger of what the node acknowledged.

The ledger (`<data>/pacs-sent/<node>.json`, one per node address, written atomically after each
object the server took) holds SOP Instance UIDs: an object whose UID is in it is not sent again; one
that failed is not in it, so the next push retries it. A re-exported case that changed has a new
SOP Instance UID (a new object, as DICOM wants), and is sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from pneumoviewer.errors import CancelCheck, FileProblem, ProgressCallback, raise_if_cancelled
from pneumoviewer.pacs.connection import connect
from pneumoviewer.pacs.nodes import PacsError, PacsNode

LEDGER_FOLDER = "pacs-sent"


class PushStatus(str, Enum):
    SENT = "sent"
    ALREADY_SENT = "already sent"  # in the ledger: not sent again
    ALREADY_THERE = "already on the server"  # the server said it holds it
    FAILED = "failed"  # retried on the next push


@dataclass(frozen=True)
class PushResult:
    path: Path
    sop_instance_uid: str
    status: PushStatus
    reason: str = ""


@dataclass
class PushReport:
    results: list[PushResult] = field(default_factory=list)
    stopped_by: PacsError | None = None  # the server failed as a whole: the rest were not tried

    def with_status(self, *statuses: PushStatus) -> list[PushResult]:
        return [result for result in self.results if result.status in statuses]

    @property
    def failed(self) -> list[PushResult]:
        return self.with_status(PushStatus.FAILED)


class PushLedger:
    """The SOP Instance UIDs one node has acknowledged."""

    def __init__(self, node: PacsNode, data_dir: Path | None = None) -> None:
        from pneumoviewer.paths import user_data_dir

        digest = hashlib.sha256(f"{node.kind} {node.address}".encode()).hexdigest()[:12]
        slug = re.sub(r"[^A-Za-z0-9_-]+", "_", node.name)[:40]
        self.path = (data_dir or user_data_dir()) / LEDGER_FOLDER / f"{slug}-{digest}.json"
        self.node = node
        self._sent: dict[str, dict[str, str]] = {}
        try:
            self._sent = dict(json.loads(self.path.read_text(encoding="utf-8"))["sent"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as error:
            # A damaged ledger only costs a resend; the server keeps one copy per SOP Instance UID.
            self.problem: FileProblem | None = FileProblem(self.path, f"the push record is damaged ({error}); "
                                                                       "objects may be sent again")
            return
        self.problem = None

    def __contains__(self, sop_instance_uid: str) -> bool:
        return sop_instance_uid in self._sent

    def record(self, sop_instance_uid: str, path: Path) -> None:
        from pneumoviewer.io.atomic import atomic_write_text

        self._sent[sop_instance_uid] = {"file": path.name, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps({"node": self.node.address, "sent": self._sent}, indent=1) + "\n")


def objects_to_push(paths: list[Path]) -> list[Path]:
    """The DICOM files among `paths` (folders: every file under them, sorted), hidden ones left out."""
    from pneumoviewer.io.dicom import is_dicom_file

    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(item for item in path.rglob("*") if item.is_file() and not item.name.startswith(".")
                                and is_dicom_file(item)))
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def push_objects(
    node: PacsNode,
    paths: list[Path],
    data_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> PushReport:
    """Send each object not sent before; a result per object. A server failure stops the push
    (`stopped_by`); the objects not tried are listed as failed with that reason."""
    import pydicom

    files = objects_to_push(paths)
    ledger = PushLedger(node, data_dir)
    report = PushReport()
    with connect(node) as connection:
        for done, path in enumerate(files, start=1):
            raise_if_cancelled(cancel)
            try:
                uid = str(pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])
                          .SOPInstanceUID)
            except (OSError, AttributeError, pydicom.errors.InvalidDicomError) as error:
                report.results.append(PushResult(path, "", PushStatus.FAILED, f"not a DICOM object ({error})"))
                continue
            if report.stopped_by is not None:
                report.results.append(PushResult(path, uid, PushStatus.FAILED, report.stopped_by.reason))
                continue
            if uid in ledger:
                report.results.append(PushResult(path, uid, PushStatus.ALREADY_SENT))
            else:
                try:
                    outcome = connection.store(path)
                except PacsError as error:
                    report.stopped_by = error
                    report.results.append(PushResult(path, uid, PushStatus.FAILED, error.reason))
                    continue
                if outcome.stored:
                    ledger.record(uid, path)
                    status = PushStatus.ALREADY_THERE if outcome.already_there else PushStatus.SENT
                    report.results.append(PushResult(path, uid, status))
                else:
                    report.results.append(PushResult(path, uid, PushStatus.FAILED, outcome.reason))
            if progress is not None:
                progress(done, len(files))
    return report
