"""A DIMSE node: C-FIND to query, C-GET to retrieve (we stay the only listener: no C-MOVE port to open),
C-STORE to store (pynetdicom). One association per kind of work, opened on first use and reused."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, cast

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AE, Association, build_role, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import A_ASSOCIATE_RJ
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)
from pynetdicom.status import code_to_category

from pneumoviewer.io.atomic import atomic_write_bytes
from pneumoviewer.pacs.connection import StoreOutcome
from pneumoviewer.pacs.nodes import PacsError, PacsNode
from pneumoviewer.pacs.studies import RETURN_KEYWORDS, InstanceRef, StudyQuery, StudyRecord, merge_studies, study_record

# What a chest radiograph study holds, and what we push back (SEG, burned-in Secondary Capture).
STORAGE_CLASSES = (ComputedRadiographyImageStorage, DigitalXRayImageStorageForPresentation,
                   DigitalXRayImageStorageForProcessing, SecondaryCaptureImageStorage, SegmentationStorage)
TRANSFER_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50",
                              "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
                              "1.2.840.10008.1.2.5")
DUPLICATE_SOP_INSTANCE = 0x0111
_SUCCESS, _PENDING = 0x0000, (0xFF00, 0xFF01)


class DimseConnection:
    def __init__(self, node: PacsNode) -> None:
        self.node = node
        self._associations: dict[str, Association] = {}
        self._received: dict[str, Path] = {}  # SOP Instance UID -> file, for the C-GET in progress

    def __enter__(self) -> DimseConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for association in self._associations.values():
            if association.is_established:
                association.release()
        self._associations.clear()

    def query(self, query: StudyQuery) -> list[StudyRecord]:
        found: list[StudyRecord] = []
        for modality in query.modalities or ("",):
            identifier = Dataset()
            identifier.QueryRetrieveLevel = "STUDY"
            for keyword in RETURN_KEYWORDS:
                setattr(identifier, keyword, "")
            for keyword, value in query.matching_keys().items():
                setattr(identifier, keyword, value)
            identifier.ModalitiesInStudy = modality
            answers = self._find(identifier, "the study query")
            found.extend(study_record(answer) for answer in answers[: query.limit])
        return merge_studies(found, query.limit)

    def instances(self, study_uid: str) -> list[InstanceRef]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "IMAGE"
        identifier.StudyInstanceUID = study_uid
        identifier.SeriesInstanceUID = ""
        identifier.SOPInstanceUID = ""
        identifier.Modality = ""
        answers = self._find(identifier, f"the instance list of study {study_uid}")
        return [InstanceRef(study_uid, str(item.SeriesInstanceUID), str(item.SOPInstanceUID),
                            str(item.get("Modality", ""))) for item in answers]

    def fetch(self, instance: InstanceRef, destination: Path) -> None:
        what = f"the retrieval of instance {instance.sop_instance_uid}"
        association = self._association("get", what)
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "IMAGE"
        identifier.StudyInstanceUID = instance.study_uid
        identifier.SeriesInstanceUID = instance.series_uid
        identifier.SOPInstanceUID = instance.sop_instance_uid
        self._received = {instance.sop_instance_uid: destination}
        code = None
        for status, _identifier in association.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet):
            self._raise_if_dropped(association, what)
            code = int(status.Status) if "Status" in status else None  # no status: the association dropped
        self._raise_if_dropped(association, what)
        if code is None:
            raise PacsError(self.node, f"{what}: the server closed the connection in the middle of the transfer")
        if code != _SUCCESS or not destination.exists():
            raise PacsError(self.node, f"{what}: the server did not send it (C-GET status 0x{code:04X})")

    def store(self, path: Path) -> StoreOutcome:
        what = f"storing {path.name}"
        dataset = pydicom.dcmread(path)
        association = self._association("store", what)
        try:
            status = association.send_c_store(dataset)
        except ValueError as error:  # pynetdicom: no accepted presentation context for this object
            return StoreOutcome(stored=False, reason=f"the server takes no {dataset.SOPClassUID.name} objects in "
                                                     f"{dataset.file_meta.TransferSyntaxUID.name} ({error})")
        self._raise_if_dropped(association, what)
        code = int(status.Status) if "Status" in status else -1
        if code == DUPLICATE_SOP_INSTANCE:
            return StoreOutcome(stored=True, already_there=True)
        if code_to_category(code) in ("Success", "Warning"):
            return StoreOutcome(stored=True)
        return StoreOutcome(stored=False, reason=f"the server refused the object (C-STORE status 0x{code:04X})")

    def _find(self, identifier: Dataset, what: str) -> list[Dataset]:
        association = self._association("find", what)
        answers: list[Dataset] = []
        for status, answer in association.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind):
            self._raise_if_dropped(association, what)
            if "Status" not in status:
                raise PacsError(self.node, f"{what}: the server closed the connection in the middle of the transfer")
            if int(status.Status) in _PENDING and answer is not None:
                answers.append(answer)
            elif int(status.Status) != _SUCCESS:
                raise PacsError(self.node, f"{what}: the server failed it (C-FIND status 0x{int(status.Status):04X})")
        self._raise_if_dropped(association, what)
        return answers

    def _association(self, purpose: str, what: str) -> Association:
        association = self._associations.get(purpose)
        if association is not None and association.is_established:
            return association
        self._check_reachable(what)
        ae = AE(ae_title=self.node.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.node.timeout_s
        ae.connection_timeout = self.node.timeout_s
        roles: list[Any] = []
        rejections: list[A_ASSOCIATE_RJ] = []
        # pynetdicom 3.0 can report a rejection as an abort: when the server closes the connection
        # right after its A-ASSOCIATE-RJ (Orthanc does), a loaded machine may see the closed socket
        # before the answer is handed on. The PDU itself is always seen, so it decides.
        def note_rejection(event: evt.Event) -> None:
            if isinstance(event.pdu, A_ASSOCIATE_RJ):
                rejections.append(event.pdu)

        handlers: list[Any] = [(evt.EVT_PDU_RECV, note_rejection)]
        if purpose == "find":
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        elif purpose == "get":
            ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
            roles = [build_role(storage, scp_role=True) for storage in STORAGE_CLASSES]
            handlers.append((evt.EVT_C_STORE, self._received_instance))
        if purpose in ("get", "store"):
            # One context per transfer syntax: each instance travels as it is stored (a JPEG stays the
            # same JPEG) instead of being transcoded to the first syntax of a shared context.
            for storage in STORAGE_CLASSES:
                for syntax in TRANSFER_SYNTAXES:
                    ae.add_requested_context(storage, syntax)
        association = ae.associate(self.node.host, self.node.port, ae_title=self.node.ae_title,
                                   ext_neg=roles, evt_handlers=handlers)
        if association.is_rejected or (rejections and not association.is_established):
            reason = f": {rejections[0].reason_str.lower()}" if rejections else ""
            raise PacsError(self.node, f"{what}: the server refused the association{reason} (is our AE title "
                                       f"{self.node.calling_ae} known to it, and its AE title {self.node.ae_title}?)")
        if not association.is_established:
            raise PacsError(self.node, f"{what}: no DICOM association could be made (no answer in "
                                       f"{self.node.timeout_s:g} s, or the port is not a DICOM port)")
        self._associations[purpose] = association
        return association

    def _check_reachable(self, what: str) -> None:
        """A plain TCP connect first: pynetdicom reports every failure alike, this says which it is."""
        try:
            with socket.create_connection((self.node.host, self.node.port), timeout=self.node.timeout_s):
                pass
        except ConnectionRefusedError as error:
            raise PacsError(self.node, f"{what}: nothing answers at this address (the server is down, or the "
                                       "host or port is wrong)") from error
        except TimeoutError as error:
            raise PacsError(self.node, f"{what}: no answer within {self.node.timeout_s:g} s") from error
        except socket.gaierror as error:
            raise PacsError(self.node, f"{what}: this host name is unknown") from error
        except OSError as error:
            raise PacsError(self.node, f"{what}: the server cannot be reached ({error.strerror or error})") from error

    def _raise_if_dropped(self, association: Association, what: str) -> None:
        if association.is_aborted or not association.is_established:
            self._associations = {key: value for key, value in self._associations.items() if value is not association}
            raise PacsError(self.node, f"{what}: the server closed the connection in the middle of the transfer")

    def _received_instance(self, event: evt.Event) -> int:
        """C-GET's C-STORE sub-operation: the instance asked for, written atomically where it belongs."""
        request = cast(C_STORE, event.request)  # the C-STORE's command set: no decoding of the instance
        destination = self._received.get(str(request.AffectedSOPInstanceUID))
        if destination is None:
            return 0xA900  # not the instance we asked for
        atomic_write_bytes(destination, bytes(event.encoded_dataset()))
        return _SUCCESS
