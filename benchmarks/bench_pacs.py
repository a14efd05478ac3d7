"""PACS throughput over loopback: studies/s pulled and objects/s pushed, against a real Orthanc, and the
time to build one DICOM SEG.

    nice -n 10 .venv/bin/python benchmarks/bench_pacs.py [--quick]

As the PACS tests do (tests/orthanc_server.py), the script moves itself into a private network
namespace (root, or run it under `unshare -rn`) and starts a throw-away Orthanc there; it uploads real
SIIM studies (one CR image each, JPEG Baseline, ~110 KB), pulls them all into an empty cache over
DICOMweb (WADO-RS) and over DIMSE (C-GET), in turns, then pushes one SEG per image over STOW-RS and
C-STORE (a fresh server for each protocol, so no push meets objects already there). Figures are
medians over the rounds; no goal: they are for comparing protocols and changes within one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo root, for `benchmarks`
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' Orthanc launcher
from benchmarks.common import DATA, Figure, add_runner_arguments, report


def run(quick: bool) -> list[Figure]:
    from orthanc_server import AE_TITLE, PASSWORD, USER, OrthancServer, enter_private_network

    from pneumoviewer.io.dicom_seg import write_seg
    from pneumoviewer.pacs.connection import query_studies
    from pneumoviewer.pacs.nodes import PacsNode
    from pneumoviewer.pacs.push import push_objects
    from pneumoviewer.pacs.retrieve import retrieve_studies
    from pneumoviewer.pacs.studies import StudyQuery

    problem = enter_private_network()
    if problem is not None:
        raise SystemExit(problem)
    count, rounds = (10, 1) if quick else (50, 3)
    sources = sorted((DATA / "siim" / "dicom-images").rglob("*.dcm"))[:count]
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="pneumoviewer-bench-pacs-") as scratch:
        root = Path(scratch)

        def nodes(server: OrthancServer) -> dict[str, PacsNode]:
            return {"DICOMweb": PacsNode("bench", "dicomweb", url=server.dicomweb_url, username=USER,
                                         password=PASSWORD),
                    "DIMSE": PacsNode("bench", "dimse", ae_title=AE_TITLE, host="127.0.0.1", port=server.dicom_port)}

        server = OrthancServer(root / "pull-server").start()
        try:
            server.upload(sources)
            pulled: dict[str, list[float]] = {"DICOMweb": [], "DIMSE": []}
            for number in range(rounds):
                for protocol, node in nodes(server).items():
                    studies = [study.study_uid for study in query_studies(node, StudyQuery())]
                    cache = root / f"cache-{protocol}-{number}"
                    started = time.perf_counter()
                    retrieve_studies(node, studies, cache)
                    pulled[protocol].append(len(studies) / (time.perf_counter() - started))
                    shutil.rmtree(cache)
        finally:
            server.stop()
        for protocol, rates in pulled.items():
            figures.append(Figure(f"studies pulled over {protocol} (loopback)", statistics.median(rates), "studies/s",
                                  note=f"{count} one-image CR studies, median of {rounds}"))

        outbox = root / "outbox"
        outbox.mkdir()
        empty = np.zeros((1024, 1024), dtype=bool)
        lesion = empty.copy()
        lesion[300:520, 600:760] = True
        build_times = []
        for number, source in enumerate(sources):
            started = time.perf_counter()
            write_seg(outbox / f"{source.stem}.seg.dcm", source, lesion if number % 2 else empty, None)
            build_times.append(time.perf_counter() - started)
        figures.append(Figure("SEG build time per image (write_seg, 1024²)", statistics.median(build_times) * 1000,
                              "ms", note=f"median of {len(build_times)}, half with a lesion"))

        pushed: dict[str, list[float]] = {"DICOMweb": [], "DIMSE": []}
        for number in range(rounds):
            for protocol in pushed:
                server = OrthancServer(root / f"push-{protocol}-{number}").start()
                try:
                    started = time.perf_counter()
                    result = push_objects(nodes(server)[protocol], [outbox], data_dir=root / f"ledger-{number}")
                    seconds = time.perf_counter() - started
                    assert not result.failed, result.failed
                    pushed[protocol].append(len(result.results) / seconds)
                finally:
                    server.stop()
        for protocol, rates in pushed.items():
            figures.append(Figure(f"SEG objects pushed over {protocol} (loopback)", statistics.median(rates),
                                  "objects/s", note=f"{count} SEGs (~{_kb(outbox)} KB each), median of {rounds}"))
    for figure in figures:
        print(f"{figure.name}: {figure.value:.1f} {figure.unit} ({figure.note})")
    return figures


def _kb(folder: Path) -> int:
    sizes = [path.stat().st_size for path in folder.iterdir()]
    return round(statistics.median(sizes) / 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runner_arguments(parser)
    args = parser.parse_args(argv)
    return report(run(args.quick), args)


if __name__ == "__main__":
    sys.exit(main())
