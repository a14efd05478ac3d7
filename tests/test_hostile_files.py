"""Hostile and broken files (tests/hostile_corpus.py): a clear DicomError each, in bounded time, and the app keeps working.

Every load runs in a thread with a time limit, so a hang fails the test instead of stalling the run.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ui_driver  # tests/ui_driver.py
import unprivileged  # tests/unprivileged.py
from hostile_corpus import (
    BIRTH_DATE,
    PATIENT_ID,
    PATIENT_NAME,
    HostileFile,
    build_corpus,
    build_unreadable,
)
from ui_driver import WAIT_MS
from unprivileged import run_without_root

from pneumoviewer.io.dicom import DicomError, load_dicom, read_header
from pneumoviewer.io.folder_scan import scan_folder
from pneumoviewer.io.images import load_radiograph

make_window = ui_driver.make_window  # fixtures
open_folder = unprivileged.open_folder
SECONDS_PER_CALL = 10  # each load takes milliseconds; this only separates "slow on a busy CI" from "hung"
_LOADERS = {"read_header": read_header, "load_dicom": load_dicom, "load_radiograph": load_radiograph}


@pytest.fixture(scope="module")
def siim_sources(siim_dir: Path) -> list[Path]:
    return sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:3]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, siim_sources: list[Path]) -> list[HostileFile]:
    return build_corpus(siim_sources[0], tmp_path_factory.mktemp("hostile") / "corpus")


def bounded(call: Callable[[], Any], seconds: float = SECONDS_PER_CALL) -> tuple[Any, BaseException | None, float]:
    """(result, exception, seconds) of `call()` run in a thread; fails the test if it has not returned in time."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as error:  # noqa: BLE001 - reported to the test, whatever it is
            outcome["error"] = error

    started = time.perf_counter()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{call} did not return within {seconds} s (a hang)")
    return outcome.get("result"), outcome.get("error"), time.perf_counter() - started


def problems_with(entry: HostileFile) -> tuple[list[str], bool, float]:
    """What is wrong with how the loaders treat `entry`, whether it was refused, and the slowest call."""
    problems, refused, slowest = [], False, 0.0
    for name, loader in _LOADERS.items():
        result, error, seconds = bounded(lambda loader=loader: loader(entry.path))
        slowest = max(slowest, seconds)
        label = f"{entry.path.name} ({entry.kind}) {name}"
        if error is None:
            if name != "read_header" and entry.must_fail:
                problems.append(f"{label}: loaded, but this damage must be refused")
            if name != "read_header" and (result.pixels.shape != (result.metadata.rows, result.metadata.columns)
                                          or not np.isfinite(result.pixels).all()):
                problems.append(f"{label}: loaded a malformed image {result.pixels.shape}")
            continue
        if not isinstance(error, DicomError):
            problems.append(f"{label}: {type(error).__name__} escaped: {error}")
            continue
        refused = refused or name == "load_dicom"
        if error.path != entry.path or str(error) != f"{entry.path}: {error.reason}" or not error.reason:
            problems.append(f"{label}: the error does not name the file and a reason: {error!r}")
        if name == "load_dicom" and entry.reason is not None and entry.reason not in error.reason:
            problems.append(f"{label}: reason {error.reason!r} lacks {entry.reason!r}")
        if any(value in str(error) for value in (PATIENT_NAME, PATIENT_ID, BIRTH_DATE)):
            problems.append(f"{label}: the message quotes patient data: {error}")
    return problems, refused, slowest


def test_every_hostile_file_is_refused_with_the_file_and_the_reason(corpus: list[HostileFile], capsys) -> None:
    problems: list[str] = []
    refused = 0
    slowest = 0.0
    for entry in corpus:
        entry_problems, entry_refused, entry_slowest = problems_with(entry)
        problems += entry_problems
        refused += entry_refused
        slowest = max(slowest, entry_slowest)
    kinds = Counter(entry.kind for entry in corpus)
    with capsys.disabled():
        print(f"\nhostile corpus: {len(corpus)} bad files tried, {refused} refused by load_dicom, "
              f"{len(corpus) - refused} loaded (damage no reader can see, e.g. inside the pixels); "
              f"slowest call {slowest:.2f} s; kinds: {dict(kinds)}")
    assert not problems, "\n".join(problems)
    assert len(corpus) >= 300 and refused >= 250
    must_fail = [entry for entry in corpus if entry.must_fail]
    assert len(must_fail) >= 200  # every kind of damage the issue names is among them
    assert {"truncated", "lying size", "wrong transfer syntax", "missing pixel data", "short pixel data",
            "multi-frame", "colour", "not an image", "empty", "folder named .dcm", "symlink loop",
            "named pipe"} <= {entry.kind for entry in must_fail}


def test_a_lying_size_is_refused_before_any_pixel_memory_is_taken(corpus: list[HostileFile]) -> None:
    import tracemalloc

    lying = next(entry for entry in corpus if entry.path.name == "size-60000-native.dcm")
    tracemalloc.start()
    try:
        with pytest.raises(DicomError, match=r"claims an absurd size \(60000x60000\)"):
            load_dicom(lying.path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # the file's 1 MB of pixels at most, never the 3.6 GB the header claims


def _unreadable_outcomes(locked: list[HostileFile]) -> dict[str, Any]:
    outcomes: dict[str, Any] = {}
    for loader_name in ("load_dicom", "load_radiograph"):
        try:
            _LOADERS[loader_name](locked[0].path)
            outcomes[loader_name] = "loaded"
        except DicomError as error:
            outcomes[loader_name] = str(error)
    outcomes["scan"] = sorted(str(error) for error in scan_folder(locked[0].path.parent).unreadable)
    return outcomes


def test_files_and_folders_without_read_permission(open_folder: Path, siim_sources: list[Path]) -> None:
    """chmod 000 does not stop root (these tests may run as root): then the check runs in a child that gave it up."""
    load_dicom(siim_sources[0])  # every lazy import done before a fork
    locked = build_unreadable(siim_sources[0], open_folder / "locked")
    (open_folder / "locked").chmod(0o755)
    outcomes = run_without_root(lambda: _unreadable_outcomes(locked))
    file_error = f"{locked[0].path}: cannot be read (Permission denied)"
    assert outcomes == {
        "load_dicom": file_error,
        "load_radiograph": file_error,
        "scan": sorted([file_error, f"{locked[1].path}: this folder cannot be read (Permission denied)"]),
    }


def test_a_folder_of_hostile_files_opens_in_the_app(qtbot, make_window, corpus: list[HostileFile],
                                                    siim_sources: list[Path], tmp_path: Path) -> None:
    folder = corpus[0].path.parent
    good = [folder / f"good-{number}.dcm" for number in (1, 2)]
    for source, target in zip(siim_sources[1:], good):
        shutil.copyfile(source, target)
    scan = scan_folder(folder)
    window = make_window()
    with qtbot.waitSignal(window.controller.sigSessionOpened, timeout=WAIT_MS):
        window.controller.open_paths([folder])
    listed = [window.panels.unreadable_list.item(row).toolTip()  # the text itself has wrap points
              for row in range(window.panels.unreadable_list.count())]
    # Every file the scan refuses is listed with its reason; copies of one image are listed once each.
    assert sorted(line for line in listed if "(shown once)" not in line) == sorted(map(str, scan.unreadable))
    assert len(listed) == len(scan.unreadable) + len(window.controller.session.duplicates)
    assert len(scan.unreadable) >= 200
    good_ids = [read_header(path).sop_instance_uid for path in good]
    assert {case.image_id for case in window.controller.session.cases} >= set(good_ids)

    # The AI sweep passes every case: a result or a reason, never a stall.
    qtbot.waitUntil(lambda: all(row.score is not None or row.error for row in window.worklist_model.rows()),
                    timeout=WAIT_MS)
    for image_id in good_ids:
        row = window.worklist_model.row_of(image_id)
        window.worklist.selectRow(row)
        qtbot.waitUntil(lambda image_id=image_id: window.case_view.image_id_on_canvas == image_id, timeout=WAIT_MS)
        assert window.worklist_model.row(image_id).score is not None
    damaged = next(case for case in window.controller.session.cases if bounded(lambda case=case: load_dicom(case.path))[1])
    window.worklist.selectRow(window.worklist_model.row_of(damaged.image_id))
    qtbot.waitUntil(lambda: "cannot be shown" in window.case_view.placeholder.text(), timeout=WAIT_MS)
    assert str(damaged.path.name) in window.case_view.placeholder.text()
