"""`pneumoviewer info FILE`: a radiograph's metadata and default display window, as text or JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "info",
        help="print a radiograph's metadata (patient age/sex, view, spacing, size, encoding, window)",
        description="Read a DICOM (or PNG/JPEG) radiograph, decode it to check it is whole, and print its "
        "metadata and default display window.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="DICOM file (any name) or PNG/JPEG image")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.io.dicom import DicomError
    from pneumoviewer.io.images import load_radiograph

    try:
        image = load_radiograph(args.file)
    except DicomError as error:
        return fail(error)
    info = dataclasses.asdict(image.metadata)
    info["path"] = str(info["path"])
    info["transfer_syntax_name"] = _transfer_syntax_name(image.metadata.transfer_syntax)
    info["window_center"], info["window_width"] = image.window
    info["display_inverted"] = image.invert
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    spacing = info["pixel_spacing_mm"]
    syntax = info["transfer_syntax"]
    lines = {
        "File": info["path"],
        "SOP Instance UID": info["sop_instance_uid"],
        "Study Instance UID": info["study_instance_uid"],
        "Patient age": info["patient_age"],
        "Patient sex": info["patient_sex"],
        "View position": info["view_position"],
        "Body part": info["body_part"],
        "Study date": info["study_date"],
        "Modality": info["modality"],
        "Size": f"{info['rows']} rows x {info['columns']} columns",
        "Pixel spacing": f"{spacing[0]:g} x {spacing[1]:g} mm (row x column)" if spacing else None,
        "Photometric": info["photometric"] + (" (displayed inverted)" if image.invert else ""),
        "Transfer syntax": f"{info['transfer_syntax_name']} ({syntax})" if syntax else None,
        "Bits stored": info["bits_stored"],
        "Default window": f"center {image.window[0]:g}, width {image.window[1]:g}",
    }
    for label, value in lines.items():
        print(f"{label + ':':20}{'unknown' if value is None else value}")
    return 0


def _transfer_syntax_name(uid: str) -> str | None:
    from pydicom.uid import UID

    return UID(uid).name if uid else None
