"""Small dialogs: export options, the import's RLE convention, shortcuts, the model card."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from pneumoviewer.io.rle import RleConvention
from pneumoviewer.review.export import ExportScope
from pneumoviewer.ui.actions import shortcut_table
from pneumoviewer.ui.model_card_plots import ModelCardPlots

RLE_CHOICES = (
    ("Relative (SIIM-ACR challenge)", RleConvention.RELATIVE),
    ("Absolute, 1-based (most Kaggle formats)", RleConvention.ABSOLUTE),
)


class ExportDialog(QDialog):
    """Where to write, which RLE convention (CSV only) and which cases."""

    def __init__(self, title: str, suggested: Path, is_csv: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self._is_csv = is_csv
        self.path_edit = QLineEdit(str(suggested))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)
        self.convention = QComboBox()
        for label, convention in RLE_CHOICES:
            self.convention.addItem(label, convention)
        self.all_cases = QCheckBox("Include unreviewed cases")
        form = QFormLayout()
        form.addRow("CSV file:" if is_csv else "Folder:", path_row)
        if is_csv:
            form.addRow("RLE:", self.convention)
        form.addRow("", self.all_cases)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.resize(620, self.sizeHint().height())

    def _browse(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        if self._is_csv:
            chosen, _ = QFileDialog.getSaveFileName(self, "Export annotations", self.path_edit.text(), "CSV (*.csv)")
        else:
            chosen = QFileDialog.getExistingDirectory(self, "Export PNG masks to", self.path_edit.text())
        if chosen:
            self.path_edit.setText(chosen)

    @property
    def path(self) -> Path:
        return Path(self.path_edit.text()).expanduser()

    @property
    def rle_convention(self) -> RleConvention:
        return self.convention.currentData()

    @property
    def scope(self) -> ExportScope:
        return ExportScope.ALL if self.all_cases.isChecked() else ExportScope.REVIEWED


def ask_rle_convention(path: Path, parent: QWidget | None = None) -> RleConvention | None:
    """Which RLE convention the CSV to import uses (the two cannot always be told apart from the text)."""
    labels = [label for label, _ in RLE_CHOICES]
    label, chosen = QInputDialog.getItem(parent, "Import annotations", f"RLE convention of {path.name}:", labels, 0,
                                         False)
    return dict(RLE_CHOICES)[label] if chosen else None


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_table()
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(["Command", "Keys"])
        for number, (command, keys) in enumerate(rows):
            table.setItem(number, 0, QTableWidgetItem(command))
            table.setItem(number, 1, QTableWidgetItem(keys))
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        table.verticalHeader().setVisible(False)
        table.setWordWrap(True)
        table.resizeRowsToContents()
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        self.resize(760, 720)


_DISCLAIMER = (
    "<p><b>Research software, not a medical device.</b> The AI marks where it sees a "
    "pneumothorax; a reader decides. Its validation figures are below.</p>"
)


class ModelCardDialog(QDialog):
    """The loaded model's card as it is stored beside the weights: what it is and how well it did."""

    def __init__(self, card: dict | None, problem: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About the AI model")
        text = QTextBrowser()
        lines = [_DISCLAIMER]
        if card is None:
            lines.append(f"<p>No model is loaded. {html.escape(problem or 'It loads in the background.')}</p>")
        else:
            first = ("metrics", "settings", "network", "training")  # what a reader asks first
            ordered = {key: card[key] for key in first if key in card}
            lines.append(_as_html(ordered | {key: value for key, value in card.items() if key not in ordered}))
        text.setHtml("".join(lines))
        layout = QVBoxLayout(self)
        self.plots = ModelCardPlots(card)  # training history, operating points, calibration
        layout.addWidget(self.plots, 2)
        layout.addWidget(text, 3)
        self.text = text
        self.resize(980, 820)


def _as_html(values: dict, depth: int = 0) -> str:
    rows = []
    for key, value in values.items():
        label = html.escape(str(key).replace("_", " "))
        if isinstance(value, dict):
            rows.append(f"<tr><td colspan=2><b>{label}</b>{_as_html(value, depth + 1)}</td></tr>")
        else:
            shown = _shown(value)
            if isinstance(value, list | tuple):
                items = [_shown(item) for item in value]
                shown = ", ".join(items) if len(items) <= 8 else f"{len(items)} values: {', '.join(items[:3])}, …"
            rows.append(f"<tr><td style='color:#8b949e; padding-right:12px'>{label}</td>"
                        f"<td>{html.escape(shown)}</td></tr>")
    return f"<table style='margin-left:{12 * depth}px'>{''.join(rows)}</table>"


def _shown(value: object) -> str:
    """A card's value as text; a float to four significant digits (0.9251628388952332 reads 0.9252)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
