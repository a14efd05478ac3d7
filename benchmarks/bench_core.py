"""Speed of the headless core: RLE, DICOM decoding to display-ready pixels, header-only indexing.

    nice -n 10 .venv/bin/python benchmarks/bench_core.py [--quick]

Prints medians over repeats. The RLE figure is compared, in the same run, with a plain
per-pixel Python loop implementing the same algorithm (the challenge's `mask_functions.py`
walks every pixel), so the ratio holds even on a busy machine where absolute times drift.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pneumoviewer.io.annotations import read_annotation_rows
from pneumoviewer.io.dicom import load_dicom, scan_folder
from pneumoviewer.io.rle import RleConvention, decode, encode

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIZE = (1024, 1024)


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def bench_rle(quick: bool) -> None:
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
    start = time.perf_counter()
    for _, encoded in rows:
        decoded = decode(encoded, SIZE)
        encode(decode(encode(decoded, RleConvention.ABSOLUTE), SIZE, RleConvention.ABSOLUTE))
    print(f"All {len(rows)} rows of siim/train-rle.csv, decode + relative -> absolute -> relative: "
          f"{time.perf_counter() - start:.2f} s")


def bench_dicom(quick: bool) -> None:
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
    for path in sorted((DATA / "edge").glob("*.dcm")):
        image = load_dicom(path)
        seconds = median_seconds(lambda path=path: load_dicom(path), 1 if quick else 5)
        print(f"  {path.name} ({image.metadata.rows}x{image.metadata.columns}): {seconds * 1e3:.1f} ms")


def bench_indexing() -> None:
    start = time.perf_counter()
    scan = scan_folder(DATA)
    seconds = time.perf_counter() - start
    files = sum(1 for path in DATA.rglob("*") if path.is_file() and not path.name.startswith("."))
    print(f"Header-only indexing of {DATA} (recursive, {files:,} files of which {len(scan.images):,} DICOM images, "
          f"{len(scan.unreadable)} unreadable):")
    print(f"  {seconds:.2f} s = {len(scan.images) / seconds:,.0f} DICOM files/s ({files / seconds:,.0f} files/s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a sample of the DICOMs")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"bench_core: data not found at {DATA}", file=sys.stderr)
        return 1
    bench_rle(args.quick)
    bench_dicom(args.quick)
    bench_indexing()
    return 0


if __name__ == "__main__":
    sys.exit(main())
