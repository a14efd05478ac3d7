"""Retrieve studies into a local cache folder, resumably, never showing half a study.

Layout: `<cache>/<StudyInstanceUID>/<SOPInstanceUID>.dcm` for studies retrieved in full; a study being
retrieved lives in `<cache>/.incoming/<StudyInstanceUID>/` (hidden: opening `<cache>` never lists it)
and its files move into place only once every instance the server lists is there. A retrieval that
stops (cancel, server down, killed) leaves its incoming folder: the next retrieval of that study
fetches only what is missing; `discard_incoming` removes what is left instead.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pneumoviewer.errors import CancelCheck, ProgressCallback, raise_if_cancelled
from pneumoviewer.pacs.connection import connect
from pneumoviewer.pacs.nodes import PacsError, PacsNode
from pneumoviewer.pacs.studies import InstanceRef

INCOMING = ".incoming"
# What the viewer opens: radiographs and their segmentations. Other series of a study (burned-in
# overlays, OT; reports; other modalities) are left on the server.
RETRIEVED_MODALITIES = ("CR", "DX", "SEG")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # a UID names a file here: nothing else may (../, /)


@dataclass(frozen=True)
class RetrievedStudy:
    study_uid: str
    folder: Path  # complete: every instance the server listed
    instances: int
    fetched: int  # this time; instances - fetched were already in the cache (or a stopped retrieval)
    skipped: int = 0  # instances of other modalities, left on the server


def study_folder(cache: Path, study_uid: str) -> Path:
    return Path(cache) / _checked_uid(study_uid)


def incoming_studies(cache: Path) -> list[str]:
    """Studies whose retrieval stopped before the end (resumed by retrieving them again)."""
    folder = Path(cache) / INCOMING
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir()) if folder.is_dir() else []


def discard_incoming(cache: Path, study_uid: str | None = None) -> list[str]:
    """Remove what stopped retrievals left (of one study, or all); returns the studies removed."""
    studies = [study_uid] if study_uid is not None else incoming_studies(cache)
    for uid in studies:
        shutil.rmtree(Path(cache) / INCOMING / _checked_uid(uid), ignore_errors=True)
    return studies


def retrieve_studies(
    node: PacsNode,
    study_uids: list[str],
    cache: Path,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
) -> list[RetrievedStudy]:
    """Fetch the studies' instances not yet in the cache; `progress(done, total)` counts instances.

    Only instances of `RETRIEVED_MODALITIES` (and those whose modality the server does not say) are
    fetched. Raises PacsError (what was fetched stays in the incoming folder, for a resume) or
    `Cancelled` (checked before each instance).
    """
    cache = Path(cache)
    with connect(node) as connection:
        listed: list[tuple[str, list[InstanceRef], int]] = []
        for uid in study_uids:
            raise_if_cancelled(cancel)
            everything = connection.instances(_checked_uid(uid))
            if not everything:
                raise PacsError(node, f"study {uid} has no instances on the server (deleted, or never there)")
            instances = [item for item in everything if item.modality in ("", *RETRIEVED_MODALITIES)]
            for instance in instances:
                _checked_uid(instance.sop_instance_uid)
            listed.append((uid, instances, len(everything) - len(instances)))
        total = sum(len(instances) for _, instances, _ in listed)
        done = 0
        retrieved = []
        for uid, instances, skipped in listed:
            incoming = cache / INCOMING / uid
            final = cache / uid
            fetched = 0
            for instance in instances:
                raise_if_cancelled(cancel)
                name = f"{instance.sop_instance_uid}.dcm"
                if not (final / name).exists() and not (incoming / name).exists():
                    incoming.mkdir(parents=True, exist_ok=True)
                    connection.fetch(instance, incoming / name)
                    fetched += 1
                done += 1
                if progress is not None:
                    progress(done, total)
            _move_into_place(incoming, final)
            retrieved.append(RetrievedStudy(uid, final, len(instances), fetched, skipped))
    return retrieved


def _move_into_place(incoming: Path, final: Path) -> None:
    """The complete study appears at once: a new study's folder is renamed; files new to a study
    retrieved before (objects added on the server since) move in one by one, each rename atomic."""
    if not incoming.is_dir():
        return
    if not final.exists():
        os.replace(incoming, final)
        return
    for entry in incoming.iterdir():
        os.replace(entry, final / entry.name)
    incoming.rmdir()


def _checked_uid(uid: str) -> str:
    if not _UID.match(uid) or len(uid) > 64:
        raise ValueError(f"{uid!r} is not a DICOM UID")
    return uid
