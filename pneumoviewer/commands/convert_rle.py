"""`pneumoviewer convert-rle IN OUT --to absolute|relative`: re-encode an annotation CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "convert-rle",
        help="re-encode an annotation CSV between relative (challenge) and absolute (1-based) RLE",
        description="Read IN (ImageId, EncodedPixels) in one RLE convention and write OUT in the other, "
        "one output row per input row. relative = the challenge's train-rle.csv (0-based first start, later "
        "starts relative to the previous run's end); absolute = 1-based absolute starts. Both column-major.",
    )
    parser.add_argument("source", type=Path, metavar="IN", help="annotation CSV to read")
    parser.add_argument("destination", type=Path, metavar="OUT", help="annotation CSV to write (may be IN)")
    parser.add_argument("--to", required=True, choices=("absolute", "relative"), help="convention to write")
    parser.add_argument("--size", default="1024", metavar="N|ROWSxCOLS",
                        help="image size the RLE refers to (default: 1024, i.e. 1024x1024)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.io.annotations import AnnotationError, convert_annotation_file
    from pneumoviewer.io.rle import RleConvention

    parts = args.size.lower().split("x")
    sizes = [int(part) for part in parts if part.strip().isdigit()]
    if len(parts) not in (1, 2) or len(sizes) != len(parts) or min(sizes) <= 0:
        return fail(f"--size {args.size}: expected N or ROWSxCOLS with positive whole numbers", status=2)
    rows, columns = sizes if len(sizes) == 2 else sizes * 2
    try:
        converted = convert_annotation_file(args.source, args.destination, RleConvention(args.to), (rows, columns))
    except AnnotationError as error:
        return fail(error)
    except OSError as error:
        return fail(f"{args.destination}: cannot be written ({error.strerror})")
    positive = sum(encoded != "-1" for _, encoded in converted)
    print(f"{args.destination}: {len(converted)} rows ({positive} with a mask) written as {args.to} RLE "
          f"for {rows}x{columns} images")
    return 0
