"""What a PACS query asks and what it answers, the same for DICOMweb and DIMSE."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

QUERY_MODALITIES = ("CR", "DX")  # chest radiographs: computed and digital radiography
_DATE = re.compile(r"^\d{8}$")


@dataclass(frozen=True)
class StudyQuery:
    """Studies to list. Dates are YYYYMMDD (either end may be open); text fields match as DICOM does
    (`*` wildcards; exact otherwise); no modality = any."""

    date_from: str = ""
    date_to: str = ""
    modalities: tuple[str, ...] = QUERY_MODALITIES
    patient_id: str = ""
    patient_name: str = ""
    accession_number: str = ""
    limit: int = 500

    def __post_init__(self) -> None:
        for value in (self.date_from, self.date_to):
            if value and not _DATE.match(value):
                raise ValueError(f"dates are YYYYMMDD, got {value!r}")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"the date range ends ({self.date_to}) before it starts ({self.date_from})")
        if self.limit <= 0:
            raise ValueError("the query limit must be positive")

    @property
    def date_range(self) -> str:
        """DICOM range matching: "A-B", "A-", "-B", or "" for any date."""
        if not self.date_from and not self.date_to:
            return ""
        if self.date_from == self.date_to:
            return self.date_from
        return f"{self.date_from}-{self.date_to}"

    def matching_keys(self) -> dict[str, str]:
        """The attributes to match on, by keyword (empty ones left out); modality is asked apart."""
        keys = {"StudyDate": self.date_range, "PatientID": self.patient_id, "PatientName": self.patient_name,
                "AccessionNumber": self.accession_number}
        return {keyword: value for keyword, value in keys.items() if value}


@dataclass(frozen=True)
class StudyRecord:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    accession_number: str = ""
    modalities: tuple[str, ...] = ()
    description: str = ""
    instances: int | None = None  # as the server counts them; None when it does not say


@dataclass(frozen=True)
class InstanceRef:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    modality: str = ""  # its series' modality, "" when the server does not say


RETURN_KEYWORDS = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber",
                   "ModalitiesInStudy", "StudyDescription", "NumberOfStudyRelatedInstances")


def merge_studies(found: list[StudyRecord], limit: int) -> list[StudyRecord]:
    """One record per study (a study of CR and DX answers both modality queries), newest first."""
    unique = {record.study_uid: record for record in found}
    ordered = sorted(unique.values(), key=lambda record: (record.study_date, record.study_uid), reverse=True)
    return ordered[:limit]


def study_record(item: Dataset) -> StudyRecord:
    """A study-level answer (a QIDO-RS JSON item or a C-FIND identifier, as a pydicom Dataset)."""
    modalities = item.get("ModalitiesInStudy", "")
    count = item.get("NumberOfStudyRelatedInstances", "")
    return StudyRecord(
        study_uid=str(item.get("StudyInstanceUID", "")),
        patient_id=str(item.get("PatientID", "")),
        patient_name=str(item.get("PatientName", "")),
        study_date=str(item.get("StudyDate", "")),
        accession_number=str(item.get("AccessionNumber", "")),
        modalities=(modalities,) if isinstance(modalities, str) else tuple(str(value) for value in modalities),
        description=str(item.get("StudyDescription", "")),
        instances=int(count) if str(count).strip() else None,
    )
