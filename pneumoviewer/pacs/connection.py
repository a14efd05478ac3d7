"""One interface to a PACS, whichever protocol the node speaks.

`connect(node)` returns a `PacsConnection` (use it in a `with`): `query`, `instances` (the SOP Instances of
a study), `fetch` (one instance into a file, atomically) and `store` (one file; the outcome per object).
Errors about the server as a whole (down, wrong port, refused login or association, timeout, closed
mid-transfer) raise `PacsError`; an object the server refuses comes back as a failed `StoreOutcome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pneumoviewer.pacs.nodes import PacsNode
from pneumoviewer.pacs.studies import InstanceRef, StudyQuery, StudyRecord


@dataclass(frozen=True)
class StoreOutcome:
    stored: bool  # the server holds the object now (sent now, or it had it already)
    already_there: bool = False
    reason: str = ""  # why not, in words, when not stored


class PacsConnection(Protocol):
    node: PacsNode

    def query(self, query: StudyQuery) -> list[StudyRecord]: ...

    def instances(self, study_uid: str) -> list[InstanceRef]: ...

    def fetch(self, instance: InstanceRef, destination: Path) -> None: ...

    def store(self, path: Path) -> StoreOutcome: ...

    def close(self) -> None: ...

    def __enter__(self) -> PacsConnection: ...

    def __exit__(self, *exc_info: object) -> None: ...


def connect(node: PacsNode) -> PacsConnection:
    """A connection to `node` (nothing is sent until the first call)."""
    if node.kind == "dicomweb":
        from pneumoviewer.pacs.dicomweb import DicomWebConnection

        return DicomWebConnection(node)
    from pneumoviewer.pacs.dimse import DimseConnection

    return DimseConnection(node)


def query_studies(node: PacsNode, query: StudyQuery) -> list[StudyRecord]:
    """One query on a connection of its own (what the CLI and the window's worker call)."""
    with connect(node) as connection:
        return connection.query(query)
