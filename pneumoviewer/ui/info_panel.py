"""Read-only panels: the case's DICOM metadata and findings, and the pixel readout."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel

from pneumoviewer.ui.lesion_overlay import LesionList

CASE_FIELDS = ("Image", "Age", "Sex", "View", "Pixel spacing", "Size", "Modality", "Study date")
FINDING_FIELDS = ("AI probability", "Triage", "AI score", "AI lesions", "AI area", "Mask lesions", "Mask area",
                  "Status", "AI timings", "AI model")


class _FieldBox(QGroupBox):
    def __init__(self, title: str, fields: tuple[str, ...]) -> None:
        super().__init__(title)
        form = QFormLayout(self)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.values: dict[str, QLabel] = {}
        for name in fields:
            value = QLabel("–")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            value.setObjectName(f"field-{name.lower().replace(' ', '-')}")
            form.addRow(f"{name}:", value)
            self.values[name] = value

    def set_values(self, values: dict[str, str]) -> None:
        for name, label in self.values.items():
            if name in values:
                label.setText(values[name] or "–")

    def clear_values(self) -> None:
        for label in self.values.values():
            label.setText("–")


class InfoPanel:
    """The study and findings boxes; the window decides where each goes."""

    def __init__(self) -> None:
        self.case_box = _FieldBox("Study", CASE_FIELDS)
        self.findings_box = _FieldBox("Findings", FINDING_FIELDS)
        self.lesions_box = LesionList()

    def set_case(self, values: dict[str, str]) -> None:
        self.case_box.set_values(values)

    def set_findings(self, values: dict[str, str]) -> None:
        self.findings_box.set_values(values)

    def clear(self) -> None:
        self.case_box.clear_values()
        self.findings_box.clear_values()

    def value(self, name: str) -> str:
        box = self.case_box if name in self.case_box.values else self.findings_box
        return box.values[name].text()
