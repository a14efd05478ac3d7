"""A DICOMweb node: QIDO-RS to query, WADO-RS to retrieve, STOW-RS to store (dicomweb-client over requests)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient

from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.pacs.connection import StoreOutcome
from pneumoviewer.pacs.nodes import PacsError, PacsNode
from pneumoviewer.pacs.studies import RETURN_KEYWORDS, InstanceRef, StudyQuery, StudyRecord, merge_studies, study_record

DUPLICATE_SOP_INSTANCE = 0x0111  # a STOW/C-STORE failure reason: the server holds this SOP Instance already
_ORIGINAL_ENCODING = (("application/dicom", "*"),)  # the instance as stored, not transcoded


class DicomWebConnection:
    def __init__(self, node: PacsNode) -> None:
        self.node = node
        self._session = requests.Session()
        if node.username:
            self._session.auth = (node.username, node.password)
        self._client = DICOMwebClient(node.url.rstrip("/"), session=self._session, timeout=node.timeout_s)
        # Its default retries every failure 5 times with 2-16 s pauses (30 s before "server down"); a
        # failed retrieval or push is resumed by the user's next pull or push instead.
        self._client.set_http_retry_params(retry=False)

    def __enter__(self) -> DicomWebConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def query(self, query: StudyQuery) -> list[StudyRecord]:
        found: list[StudyRecord] = []
        for modality in query.modalities or ("",):
            filters = dict(query.matching_keys())
            if modality:
                filters["ModalitiesInStudy"] = modality
            with self._speaking("the study query"):
                answers = self._client.search_for_studies(search_filters=filters, fields=list(RETURN_KEYWORDS),
                                                          limit=query.limit)
            found.extend(study_record(pydicom.Dataset.from_json(answer)) for answer in answers)
        return merge_studies(found, query.limit)

    def instances(self, study_uid: str) -> list[InstanceRef]:
        with self._speaking(f"the instance list of study {study_uid}"):
            answers = self._client.search_for_instances(study_instance_uid=study_uid,
                                                        fields=["SeriesInstanceUID", "SOPInstanceUID", "Modality"])
        listed = [pydicom.Dataset.from_json(answer) for answer in answers]
        return [InstanceRef(study_uid, str(item.SeriesInstanceUID), str(item.SOPInstanceUID),
                            str(item.get("Modality", ""))) for item in listed]

    def fetch(self, instance: InstanceRef, destination: Path) -> None:
        with self._speaking(f"the retrieval of instance {instance.sop_instance_uid}"):
            dataset = self._client.retrieve_instance(instance.study_uid, instance.series_uid,
                                                     instance.sop_instance_uid, media_types=_ORIGINAL_ENCODING)
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        atomic_write_bytes(destination, buffer.getvalue())

    def store(self, path: Path) -> StoreOutcome:
        dataset = pydicom.dcmread(path)
        try:
            with self._speaking(f"storing {path.name}", per_object=True):
                answer = self._client.store_instances([dataset])
        except _ObjectRefused as refusal:
            return refusal.outcome
        failed = answer.get("FailedSOPSequence", [])
        if failed:
            return _failure_outcome(int(failed[0].get("FailureReason", 0)), "")
        return StoreOutcome(stored=True)

    @contextmanager
    def _speaking(self, what: str, per_object: bool = False) -> Iterator[None]:
        """requests' and the server's errors as one clear PacsError (or, storing, an object's refusal)."""
        try:
            yield
        except requests.HTTPError as error:
            response = error.response
            status = response.status_code if response is not None else 0
            if per_object and status not in (401, 403, 404) and status < 500:
                raise _ObjectRefused(_failure_outcome(_failure_reason(response), f"HTTP {status}")) from error
            raise PacsError(self.node, _http_reason(status, what)) from error
        except requests.Timeout as error:
            raise PacsError(self.node, f"{what}: no answer within {self.node.timeout_s:g} s (the server hangs, "
                                       "or this port is not its DICOMweb port)") from error
        except requests.ConnectionError as error:
            raise PacsError(self.node, f"{what}: {_connection_reason(error)}") from error
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as error:
            raise PacsError(self.node, f"{what}: the server closed the connection in the middle of the "
                                       "transfer") from error
        except (ValueError, KeyError, pydicom.errors.InvalidDicomError) as error:
            raise PacsError(self.node, f"{what}: the server's answer is not valid DICOMweb ({error})") from error


class _ObjectRefused(Exception):
    def __init__(self, outcome: StoreOutcome) -> None:
        self.outcome = outcome


def _http_reason(status: int, what: str) -> str:
    if status == 401:
        return f"{what}: the server refused the user name or password (HTTP 401)"
    if status == 403:
        return f"{what}: this user may not do that on the server (HTTP 403)"
    if status == 404:
        return f"{what}: not found on the server (HTTP 404: is the DICOMweb base URL right, is the study still there?)"
    if status >= 500:
        return f"{what}: the server failed (HTTP {status}); try again later or ask its administrator"
    return f"{what}: the server refused the request (HTTP {status})"


def _connection_reason(error: requests.ConnectionError) -> str:
    text = str(error)
    if "Connection refused" in text or "NewConnectionError" in text:
        return "nothing answers at this address (the server is down, or the host or port is wrong)"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "this host name is unknown"
    if "BadStatusLine" in text or "Connection aborted" in text:
        return "the server closed the connection without an HTTP answer (is this its DICOMweb port? did it stop?)"
    return f"the connection failed ({type(error).__name__})"


def _failure_reason(response: requests.Response | None) -> int:
    """The first FailureReason of a STOW-RS error body (DICOM JSON), 0 when it has none."""
    try:
        body: Any = json.loads(response.content) if response is not None else {}
        dataset = pydicom.Dataset.from_json(body[0] if isinstance(body, list) else body)
        return int(dataset.FailedSOPSequence[0].FailureReason)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError):
        return 0


def _failure_outcome(reason_code: int, status: str) -> StoreOutcome:
    if reason_code == DUPLICATE_SOP_INSTANCE:
        return StoreOutcome(stored=True, already_there=True)
    code = f"failure reason 0x{reason_code:04X}" if reason_code else "no reason given"
    detail = ", ".join(part for part in (status, code) if part)
    if status == "HTTP 409":
        return StoreOutcome(stored=False, reason=f"the server refused the object as a conflict ({detail}: a "
                                                 "duplicate or another object with this UID)")
    return StoreOutcome(stored=False, reason=f"the server refused the object ({detail})")
