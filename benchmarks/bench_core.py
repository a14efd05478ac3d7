"""Speed of the headless core: RLE, DICOM decoding to display-ready pixels, header-only indexing.

    nice -n 10 .venv/bin/python benchmarks/bench_core.py [--quick]

Prints medians over repeats. The RLE figure is compared, in the same run, with a plain
per-pixel Python loop implementing the same algorithm (the challenge's `mask_functions.py`
walks every pixel), and the JPEG decoder we use (Pillow) with pydicom's pylibjpeg plugin on the
same files, so the ratios hold even on a busy machine where absolute times drift.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import pixel_array

from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.dicom import load_dicom
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.io.rle import RleConvention, decode, encode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
from benchmarks.common import (
    DATA,
    Figure,
    add_runner_arguments,
    median_seconds,
    report,
    timed_ms,
)

SIZE = (1024, 1024)


def loop_encode(mask: np.ndarray) -> str:
    """Relative RLE, one pixel at a time (the challenge's mask2rle), on Python lists for its best speed."""
    columns = mask.T.tolist()
    pairs: list[int] = []
    previous_end = 0
    run_start = -1
    position = 0
    for column in columns:
        for value in column:
            if value and run_start < 0:
                run_start = position
            elif not value and run_start >= 0:
                pairs += [run_start - previous_end, position - run_start]
                previous_end, run_start = position, -1
            position += 1
    if run_start >= 0:
        pairs += [run_start - previous_end, position - run_start]
    return " ".join(map(str, pairs)) if pairs else "-1"


def loop_decode(text: str, shape: tuple[int, int]) -> np.ndarray:
    """Relative RLE to a mask, setting one pixel at a time."""
    rows, columns = shape
    flat = [False] * (rows * columns)
    values = [] if text.strip() == "-1" else [int(value) for value in text.split()]
    position = 0
    for start, length in zip(values[0::2], values[1::2]):
        position += start
        for _ in range(length):
            flat[position] = True
            position += 1
    return np.array(flat, dtype=bool).reshape(columns, rows).T


def bench_rle(quick: bool) -> list[Figure]:
    figures = []
    rows = read_annotation_rows(DATA / "siim" / "train-rle.csv")
    positive = sorted((encoded for _, encoded in rows if encoded != "-1"), key=lambda e: len(e.split()))
    # The median annotation, and the largest (the worst case for the number of runs).
    for label, text in (("median", positive[len(positive) // 2]), ("largest", positive[-1])):
        mask = decode(text, SIZE)
        assert loop_encode(mask) == encode(mask) == text
        assert np.array_equal(loop_decode(text, SIZE), mask)
        vectorised = median_seconds(lambda mask=mask: decode(encode(mask), SIZE), 5 if quick else 30)
        looped = median_seconds(lambda mask=mask: loop_decode(loop_encode(mask), SIZE), 1 if quick else 3)
        print(f"RLE encode+decode, {label} SIIM annotation on 1024x1024 "
              f"({int(mask.sum()):,} pixels, {len(text.split()) // 2} runs):")
        print(f"  vectorised       {vectorised * 1e3:9.2f} ms")
        print(f"  per-pixel loop   {looped * 1e3:9.2f} ms")
        print(f"  speed-up         {looped / vectorised:9.0f}x (same run)")
        figures += [Figure(f"RLE encode+decode 1024², {label} annotation", vectorised * 1e3, "ms",
                           note=f"{int(mask.sum()):,} px, {len(text.split()) // 2} runs"),
                    Figure(f"  speed-up over a per-pixel loop, {label} annotation", looped / vectorised, "x",
                           note=f"loop {looped * 1e3:,.0f} ms, same run")]
    start = time.perf_counter()
    for _, encoded in rows:
        decoded = decode(encoded, SIZE)
        encode(decode(encode(decoded, RleConvention.ABSOLUTE), SIZE, RleConvention.ABSOLUTE))
    print(f"All {len(rows)} rows of siim/train-rle.csv, decode + relative -> absolute -> relative: "
          f"{time.perf_counter() - start:.2f} s")
    return figures


def bench_dicom(quick: bool) -> list[Figure]:
    files = sorted((DATA / "siim" / "dicom-images").rglob("*.dcm"))
    sample = files[:: max(1, len(files) // 40)] if quick else files
    times = []
    for path in sample:
        start = time.perf_counter()
        load_dicom(path)
        times.append(time.perf_counter() - start)
    print(f"DICOM to display-ready pixels, SIIM 1024x1024 JPEG Baseline ({len(sample)} files):")
    print(f"  median {statistics.median(times) * 1e3:.1f} ms, p95 {np.percentile(times, 95) * 1e3:.1f} ms, "
          f"total {sum(times):.1f} s")
    figures = [Figure("open DICOM -> display-ready pixels, SIIM 1024² JPEG", statistics.median(times) * 1e3, "ms",
                      note=f"{len(sample):,} files, p95 {np.percentile(times, 95) * 1e3:.0f} ms")]
    for path in sorted((DATA / "edge").glob("*.dcm")):
        image = load_dicom(path)
        seconds = median_seconds(lambda path=path: load_dicom(path), 1 if quick else 5)
        print(f"  {path.name} ({image.metadata.rows}x{image.metadata.columns}): {seconds * 1e3:.1f} ms")
        figures.append(Figure(f"  open edge/{path.name}", seconds * 1e3, "ms",
                              note=f"{image.metadata.rows}x{image.metadata.columns}, {image.metadata.bits_stored}-bit"))
    return figures + bench_jpeg_decoders(sample[:: max(1, len(sample) // 20)], 2 if quick else 5)


def bench_jpeg_decoders(files: list[Path], repeats: int) -> list[Figure]:
    """JPEG Baseline decode alone, Pillow (what load_dicom uses) against pydicom's pylibjpeg plugin."""
    datasets = [pydicom.dcmread(path) for path in files]
    medians = {}
    for plugin in ("pillow", "pylibjpeg"):
        medians[plugin] = statistics.median(
            median_seconds(lambda dataset=dataset, plugin=plugin: pixel_array(dataset, decoding_plugin=plugin), repeats)
            for dataset in datasets)
        print(f"  JPEG decode only, {plugin:<10} median {medians[plugin] * 1e3:.1f} ms ({len(files)} files)")
    return [Figure("  JPEG decode: Pillow speed-up over pylibjpeg", medians["pylibjpeg"] / medians["pillow"], "x",
                   note=f"Pillow {medians['pillow'] * 1e3:.1f} ms vs {medians['pylibjpeg'] * 1e3:.1f} ms, same run")]


def bench_indexing(quick: bool) -> list[Figure]:
    scan = scan_folder(DATA)  # also the warm-up: the timed scans find the file cache warm
    seconds = statistics.median(timed_ms(lambda: scan_folder(DATA), 1 if quick else 3)) / 1000
    files = sum(1 for path in DATA.rglob("*") if path.is_file() and not path.name.startswith("."))
    print(f"Header-only indexing of {DATA} (recursive, {files:,} files of which {len(scan.images):,} DICOM images, "
          f"{len(scan.unreadable)} unreadable; file cache warm):")
    print(f"  {seconds:.2f} s = {len(scan.images) / seconds:,.0f} DICOM files/s ({files / seconds:,.0f} files/s)")
    return [Figure("header indexing of a folder (scan_folder)", len(scan.images) / seconds, "files/s",
                   note=f"{len(scan.images):,} DICOMs among {files:,} files, {seconds:.2f} s, file cache warm")]


def run(quick: bool) -> list[Figure]:
    return bench_rle(quick) + bench_dicom(quick) + bench_indexing(quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"bench_core: data not found at {DATA}", file=sys.stderr)
        return 1
    return report(run(args.quick), args)


if __name__ == "__main__":
    sys.exit(main())
