#!/usr/bin/env python3
"""Write the "site twin" of a folder of DICOMs: each film as another site's DX equipment would store it.

  scripts/make_site_twin.py SRC_FOLDER OUT_FOLDER [--ids-from CARD_OR_CSV] [--profile JSON]

Every DICOM under SRC_FOLDER (recursively) is re-rendered by `pneumoviewer.training.site_render`
(range compression, another contrast curve, edge enhancement, noise, 12 bits stored, the file's own
window) and written under OUT_FOLDER at the same relative path, as a DX DICOM with the same SOP
Instance UID, so the source's labels CSV applies to the twin. `--ids-from` keeps only some images:
a model card (its validation ids), a labels CSV (its ImageId column), a JSON list or a text file.
Deterministic: the same source and profile give the same files. OUT_FOLDER gets `site-profile.json`.
Unreadable files are reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pneumoviewer.commands.evaluate import read_id_list  # noqa: E402
from pneumoviewer.io.dicom import DicomError  # noqa: E402
from pneumoviewer.io.folder_scan import scan_folder  # noqa: E402
from pneumoviewer.training.site_render import DEFAULT_PROFILE, SiteProfile, write_twin_dicom  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make_site_twin.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, metavar="SRC_FOLDER")
    parser.add_argument("out", type=Path, metavar="OUT_FOLDER")
    parser.add_argument("--ids-from", type=Path, metavar="CARD_OR_CSV",
                        help="only these ImageIds: a model card .json, a labels .csv, a JSON list or a text file")
    parser.add_argument("--profile", type=Path, help="a JSON file of SiteProfile fields (default: dx-site-b)")
    args = parser.parse_args(argv)
    try:
        wanted = read_id_list(args.ids_from) if args.ids_from is not None else None
        profile = DEFAULT_PROFILE if args.profile is None else SiteProfile(**json.loads(args.profile.read_text()))
    except (ValueError, OSError, TypeError) as error:
        print(f"make_site_twin.py: {error}", file=sys.stderr)
        return 2
    if not args.source.is_dir():
        print(f"make_site_twin.py: {args.source}: is not a folder", file=sys.stderr)
        return 2
    scan = scan_folder(args.source)
    for problem in scan.unreadable:
        print(f"make_site_twin.py: {problem} (skipped)", file=sys.stderr)
    images = [header for header in scan.images if wanted is None or header.sop_instance_uid in wanted]
    written = 0
    for number, header in enumerate(images, 1):
        target = args.out / header.path.relative_to(args.source)
        try:
            write_twin_dicom(header.path, target, profile)
            written += 1
        except DicomError as error:
            print(f"make_site_twin.py: {error} (skipped)", file=sys.stderr)
        except OSError as error:
            print(f"make_site_twin.py: {target}: not written ({error.strerror or error})", file=sys.stderr)
        if number % 50 == 0:
            print(f"{number} / {len(images)}", file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "site-profile.json").write_text(json.dumps(profile.to_dict(), indent=2) + "\n")
    missing = len(wanted - {header.sop_instance_uid for header in scan.images}) if wanted is not None else 0
    print(f"{written} site-twin DICOM(s) ({profile.name}) in {args.out}"
          + (f"; {missing} listed ImageId(s) not found under {args.source}" if missing else ""))
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
