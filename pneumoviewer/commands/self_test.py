"""`pneumoviewer self-test` (also `--self-test`): check this installation end to end, headless."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pneumoviewer.commands import fail

if TYPE_CHECKING:
    from pneumoviewer.commands import Subparsers


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "self-test",
        help="check this installation end to end without opening a window (also: --self-test)",
        description="Load a demo DICOM, run the model and Grad-CAM, write and re-read an RLE CSV in a "
        "temporary folder and start Qt offscreen; prints one line per step. Exit status 0 = all passed.",
    )
    parser.add_argument("--image", type=Path, help="radiograph to use (default: the first bundled demo study)")
    parser.add_argument("--model", type=Path, help="model weights to use (default: the bundled model)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder with the CSV")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pneumoviewer.self_test import SelfTestError, run_self_test

    try:
        run_self_test(image=args.image, model=args.model, keep=args.keep)
    except SelfTestError as error:
        status = fail(error)
        print("self-test FAILED", file=sys.stderr)
        return status
    return 0
