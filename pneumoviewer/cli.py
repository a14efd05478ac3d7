"""The one entry point: `pneumoviewer` opens the GUI; subcommands do the same work headless.

Each subcommand is a `_cmd_<name>(args) -> int` handler registered in `build_parser`.
Heavy imports (torch, Qt) happen inside handlers so `--help` and `--version` stay instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pneumoviewer import __version__


def _cmd_gui(args: argparse.Namespace) -> int:
    from pneumoviewer.ui.app import run_app

    return run_app(paths=args.paths, demo=args.demo)


# Each entry adds one subparser (with `handler=`) to the subparsers action it is given.
_SUBCOMMANDS: list = []


def _register_install_desktop(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "install-desktop",
        help="add PneumoViewer to this user's application menu and 'Open with' (Linux)",
        description="Install a freedesktop launcher and icons for the current user, pointing at this "
        "installation, so DICOM files and folders can be opened with PneumoViewer from the desktop.",
    )
    parser.add_argument("--data-home", type=Path, help="install under this folder instead of $XDG_DATA_HOME")
    parser.set_defaults(handler=_cmd_install_desktop)


def _cmd_install_desktop(args: argparse.Namespace) -> int:
    from pneumoviewer.desktop import DesktopInstallError, install_desktop

    if not sys.platform.startswith(("linux", "freebsd")):
        print("pneumoviewer: install-desktop: desktop launchers are for Linux; see packaging/README.md "
              "for Windows and macOS", file=sys.stderr)
        return 2
    try:
        installed = install_desktop(args.data_home)
    except DesktopInstallError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 1
    print(f"Installed {installed.desktop_file}")
    print(f"  runs:  {' '.join(installed.command)}")
    print(f"  icons: {len(installed.icon_files)} files under {installed.icon_files[0].parents[2]}")
    for note in installed.notes:
        print(f"  note: {note}")
    return 0


_SUBCOMMANDS.append(_register_install_desktop)


def _register_uninstall_desktop(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "uninstall-desktop", help="remove the launcher and icons that install-desktop added"
    )
    parser.add_argument("--data-home", type=Path, help="remove from this folder instead of $XDG_DATA_HOME")
    parser.set_defaults(handler=_cmd_uninstall_desktop)


def _cmd_uninstall_desktop(args: argparse.Namespace) -> int:
    from pneumoviewer.desktop import DesktopInstallError, uninstall_desktop

    try:
        removed = uninstall_desktop(args.data_home)
    except DesktopInstallError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 1
    print(f"Removed {len(removed)} files" if removed else "No PneumoViewer launcher was installed")
    for path in removed:
        print(f"  {path}")
    return 0


_SUBCOMMANDS.append(_register_uninstall_desktop)


def _register_self_test(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "self-test",
        help="check this installation end to end without opening a window (also: --self-test)",
        description="Load a demo DICOM, run the model and Grad-CAM, write and re-read an RLE CSV in a "
        "temporary folder and start Qt offscreen; prints one line per step. Exit status 0 = all passed.",
    )
    parser.add_argument("--image", type=Path, help="radiograph to use (default: the first bundled demo study)")
    parser.add_argument("--model", type=Path, help="model weights to use (default: the bundled model)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder with the CSV")
    parser.set_defaults(handler=_cmd_self_test)


def _cmd_self_test(args: argparse.Namespace) -> int:
    from pneumoviewer.self_test import SelfTestError, run_self_test

    try:
        run_self_test(image=args.image, model=args.model, keep=args.keep)
    except SelfTestError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        print("self-test FAILED", file=sys.stderr)
        return 1
    return 0


_SUBCOMMANDS.append(_register_self_test)


def _register_predict(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict pneumothorax masks and triage scores for radiographs, headless",
        description="Run the model on DICOM files or folders (searched recursively; PNG/JPEG files may be "
        "named directly). Writes the masks in the SIIM-ACR CSV format (ImageId = SOPInstanceUID, one row "
        "per lesion, -1 = none) and the triage scores, highest first. Unreadable files are reported and "
        "skipped; the exit status is non-zero only when nothing could be predicted.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="DICOM/PNG/JPEG files or folders")
    parser.add_argument("--out", type=Path, required=True, help="masks CSV to write (ImageId,EncodedPixels)")
    parser.add_argument("--model", type=Path, help="model weights (.safetensors with its .json card; default: bundled)")
    parser.add_argument("--rle", choices=("relative", "absolute"), default="relative",
                        help="RLE convention: the challenge's relative starts (default) or 1-based absolute starts")
    parser.add_argument("--scores", type=Path,
                        help="scores CSV (ImageId,score,call,lesions,area_px,area_mm2,file; default: OUT-scores.csv)")
    parser.add_argument("--cam-dir", type=Path, help="write each image's Grad-CAM heat as a grey PNG here")
    parser.add_argument("--overlay-dir", type=Path, help="write each image with mask outline and heat as a PNG here")
    _add_setting_arguments(parser)
    parser.set_defaults(handler=_cmd_predict)


def _add_setting_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tta", action="store_true", help="also predict the mirrored image and average (2x slower)")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the model card's inference settings, e.g. mask_threshold=0.3 "
                        "(presence_threshold, presence_min_pixels, mask_threshold, min_lesion_area_px, "
                        "presence_head_weight, tta); repeatable")


def _setting_overrides(args: argparse.Namespace) -> dict:
    from pneumoviewer.model.batch import parse_setting_overrides

    overrides = parse_setting_overrides(args.setting)
    if args.tta:
        overrides["tta"] = True
    return overrides


def _cmd_predict(args: argparse.Namespace) -> int:
    from pneumoviewer.io.rle import RleConvention
    from pneumoviewer.model.batch_predict import run_predict

    try:
        overrides = _setting_overrides(args)
    except ValueError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 2
    return run_predict(args.paths, args.out, model=args.model, convention=RleConvention(args.rle),
                       scores=args.scores, cam_dir=args.cam_dir, overlay_dir=args.overlay_dir, overrides=overrides)


_SUBCOMMANDS.append(_register_predict)


def _register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score the model on labelled DICOMs against the all-empty baseline",
        description="Predict every labelled DICOM under --images (recursive) and report the challenge score "
        "(mean Dice) beside the all-empty baseline on the same images, the presence confusion matrix, "
        "sensitivity, specificity, ROC AUC of the triage score and the latency per image. Images without a "
        "label row are skipped with a note.",
    )
    parser.add_argument("--labels", type=Path, required=True, help="labels CSV in the SIIM-ACR format (train-rle.csv)")
    parser.add_argument("--images", type=Path, required=True, help="folder of DICOMs, searched recursively")
    parser.add_argument("--model", type=Path, help="model weights (.safetensors with its .json card; default: bundled)")
    parser.add_argument("--ids", type=Path, help="evaluate only these ImageIds: a text file (one per line), a JSON "
                        "list, or a model card .json (its recorded validation split)")
    parser.add_argument("--json", type=Path, dest="json_out", help="also write the figures and per-image results here")
    _add_setting_arguments(parser)
    parser.set_defaults(handler=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pneumoviewer.model.batch_evaluate import run_evaluate

    try:
        overrides = _setting_overrides(args)
    except ValueError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 2
    return run_evaluate(args.labels, args.images, model=args.model, ids_file=args.ids, json_out=args.json_out,
                        overrides=overrides)


_SUBCOMMANDS.append(_register_evaluate)


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a pneumothorax model on labelled radiographs (SIIM-ACR train-rle.csv format)",
        description="Train the U-Net with presence head. Images are found recursively in --images as "
        "<ImageId>.dcm/.png/.jpg. Validation images are drawn from --labels only (a stratified, seeded split), "
        "never from the extra set. Writes OUT/last and OUT/best after every epoch, then OUT/model "
        "(.safetensors + .json model card, settings tuned on the validation split).",
    )
    parser.add_argument("--labels", type=Path, required=True, help="train-rle.csv of the primary (DICOM) images")
    parser.add_argument("--images", type=Path, required=True, help="folder holding the primary images")
    parser.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, cache)")
    parser.add_argument("--extra-labels", type=Path, help="train-rle.csv of extra training-only images")
    parser.add_argument("--extra-images", type=Path, help="folder holding the extra images")
    parser.add_argument("--encoder-weights", type=Path,
                        help="ImageNet MobileNetV2 weights (.safetensors, torchvision layout) to start the encoder from")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--input-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--steps-per-epoch", type=int, help="default: one pass over the training images")
    parser.add_argument("--validation-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--cache-dir", type=Path, help="decoded-image cache (default: OUT/cache)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores but one)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last after its last finished epoch")
    parser.add_argument(
        "--ship", choices=("last", "best"), default="last",
        help="the epoch written as OUT/model: the last (default) or the best by per-epoch validation score",
    )
    parser.set_defaults(handler=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from pneumoviewer.io.annotations import AnnotationError
    from pneumoviewer.io.dicom import DicomError
    from pneumoviewer.model.checkpoint import CheckpointError
    from pneumoviewer.model.data import TrainingDataError
    from pneumoviewer.model.train import TrainingOptions, train

    options = TrainingOptions(
        labels=args.labels, images=args.images, out=args.out, extra_labels=args.extra_labels,
        extra_images=args.extra_images, encoder_weights=args.encoder_weights, epochs=args.epochs,
        input_size=args.input_size, batch_size=args.batch_size, learning_rate=args.learning_rate,
        steps_per_epoch=args.steps_per_epoch, validation_fraction=args.validation_fraction, seed=args.seed,
        cache_dir=args.cache_dir, threads=args.threads, resume=args.resume, ship=args.ship,
    )
    try:
        model = train(options)
    except (AnnotationError, DicomError, CheckpointError, TrainingDataError) as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 1
    except FileNotFoundError as error:
        print(f"pneumoviewer: {error.filename}: file not found", file=sys.stderr)
        return 1
    print(f"model written to {model}.safetensors (+ .json card)")
    return 0


_SUBCOMMANDS.append(_register_train)


def _register_info(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="print a radiograph's metadata (patient age/sex, view, spacing, size, encoding, window)",
        description="Read a DICOM (or PNG/JPEG) radiograph, decode it to check it is whole, and print its "
        "metadata and default display window.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="DICOM file (any name) or PNG/JPEG image")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(handler=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from pneumoviewer.io.dicom import DicomError
    from pneumoviewer.io.images import load_radiograph

    try:
        image = load_radiograph(args.file)
    except DicomError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 1
    info = dataclasses.asdict(image.metadata)
    info["path"] = str(info["path"])
    info["transfer_syntax_name"] = _transfer_syntax_name(image.metadata.transfer_syntax)
    info["window_center"], info["window_width"] = image.window
    info["display_inverted"] = image.invert
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    spacing = info["pixel_spacing_mm"]
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
        "Transfer syntax": f"{info['transfer_syntax_name']} ({info['transfer_syntax']})" if info["transfer_syntax"] else None,
        "Bits stored": info["bits_stored"],
        "Default window": f"center {image.window[0]:g}, width {image.window[1]:g}",
    }
    for label, value in lines.items():
        print(f"{label + ':':20}{'unknown' if value is None else value}")
    return 0


def _transfer_syntax_name(uid: str) -> str | None:
    from pydicom.uid import UID

    return UID(uid).name if uid else None


_SUBCOMMANDS.append(_register_info)


def _register_convert_rle(subparsers: argparse._SubParsersAction) -> None:
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
    parser.set_defaults(handler=_cmd_convert_rle)


def _cmd_convert_rle(args: argparse.Namespace) -> int:
    from pneumoviewer.io.annotations import AnnotationError, convert_annotation_file
    from pneumoviewer.io.rle import RleConvention

    parts = args.size.lower().split("x")
    sizes = [int(part) for part in parts if part.strip().isdigit()]
    if len(parts) not in (1, 2) or len(sizes) != len(parts) or min(sizes) <= 0:
        print(f"pneumoviewer: --size {args.size}: expected N or ROWSxCOLS with positive whole numbers",
              file=sys.stderr)
        return 2
    rows, columns = sizes if len(sizes) == 2 else sizes * 2
    try:
        converted = convert_annotation_file(args.source, args.destination, RleConvention(args.to), (rows, columns))
    except AnnotationError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"pneumoviewer: {args.destination}: cannot be written ({error.strerror})", file=sys.stderr)
        return 1
    positive = sum(encoded != "-1" for _, encoded in converted)
    print(f"{args.destination}: {len(converted)} rows ({positive} with a mask) written as {args.to} RLE "
          f"for {rows}x{columns} images")
    return 0


_SUBCOMMANDS.append(_register_convert_rle)


def _register_export(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a folder's reviewed annotations (as saved by the app) to a SIIM-ACR CSV and/or PNG masks",
        description="Read the review session the app autosaved for FOLDER (statuses and corrected masks) and "
        "write it as a challenge-format CSV (ImageId, EncodedPixels; one row per lesion, -1 = none or rejected) "
        "and/or one 0/255 PNG mask per image. Reviewed cases only, unless --all.",
    )
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="the folder of DICOMs that was reviewed")
    parser.add_argument("--out", type=Path, help="annotation CSV to write")
    parser.add_argument("--pngs", type=Path, metavar="DIR", help="folder for one PNG mask per image")
    parser.add_argument("--rle", choices=("relative", "absolute"), default="relative",
                        help="RLE convention: the challenge's relative starts (default) or 1-based absolute starts")
    parser.add_argument("--all", action="store_true", help="include unreviewed cases with their current mask")
    parser.set_defaults(handler=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pneumoviewer.io.dicom import DicomError, scan_folder
    from pneumoviewer.io.rle import RleConvention
    from pneumoviewer.review.export import (
        ExportError,
        ExportScope,
        cases_to_export,
        export_csv,
        export_pngs,
    )
    from pneumoviewer.review.session import ReviewSession

    if args.out is None and args.pngs is None:
        print("pneumoviewer: export: give --out CSV and/or --pngs DIR", file=sys.stderr)
        return 2
    try:
        scan = scan_folder(args.folder)
    except DicomError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 1
    for problem in scan.unreadable:
        print(f"pneumoviewer: {problem} (skipped)", file=sys.stderr)
    session = ReviewSession.from_metadata(args.folder, scan.images)
    for problem in session.restore_problems:
        print(f"pneumoviewer: {problem}", file=sys.stderr)
    scope = ExportScope.ALL if args.all else ExportScope.REVIEWED
    counts = ", ".join(f"{count} {status.value}" for status, count in session.status_counts().items() if count)
    print(f"{args.folder}: {len(session)} images ({counts or 'none'})")
    try:
        if args.out is not None:
            with tqdm(total=len(cases_to_export(session.cases, scope)), desc="CSV", unit="image") as bar:
                summary = export_csv(session.cases, args.out, RleConvention(args.rle), scope,
                                     progress=lambda done, _total: bar.update(done - bar.n))
            print(f"{summary.path}: {summary.images} images, {summary.positive} with pneumothorax ({args.rle} RLE)")
        if args.pngs is not None:
            summary = export_pngs(session.cases, args.pngs, scope)
            print(f"{summary.path}: {summary.images} PNG masks, {summary.positive} with pneumothorax")
    except ExportError as error:
        print(f"pneumoviewer: {error}", file=sys.stderr)
        return 1
    return 0


_SUBCOMMANDS.append(_register_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pneumoviewer",
        description="Pneumothorax review on chest X-rays. With no subcommand, opens the desktop app "
        "(optionally on PATH: a folder of DICOMs, or files).",
    )
    parser.add_argument("--version", action="version", version=f"pneumoviewer {__version__}")
    parser.add_argument("--demo", action="store_true", help="open the bundled demo studies")
    parser.set_defaults(handler=_cmd_gui, paths=[])
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in _SUBCOMMANDS:
        register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `--self-test` is the flag spelling of the `self-test` subcommand (bundles are smoke-tested with it).
    argv = ["self-test" if arg == "--self-test" else arg for arg in argv]
    parser = build_parser()
    subcommands = _subcommand_names(parser)
    # `pneumoviewer PATH...` opens the GUI on those paths; anything else is a subcommand.
    if argv and not argv[0].startswith("-") and argv[0] not in subcommands:
        args = parser.parse_args([a for a in argv if a.startswith("-")])
        args.paths = [a for a in argv if not a.startswith("-")]
    else:
        args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


def gui_main() -> int:
    """Entry for desktop launchers (gui-scripts): no console, same behaviour."""
    return main()


def _subcommand_names(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


if __name__ == "__main__":
    sys.exit(main())
