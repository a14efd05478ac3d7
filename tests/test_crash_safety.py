"""Nothing typed is lost: a full disk or a read-only folder leaves the old file whole and says so; SIGKILL loses nothing.

Every file the user's work goes to (annotation CSV export, PNG mask export, session autosave) is
tried against a disk that fills up during the write or at fsync, and against a folder without write
permission (for real: as root the check runs in a child that gave root up, see tests/unprivileged.py).
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import ui_driver  # tests/ui_driver.py
import unprivileged  # tests/unprivileged.py
from ui_driver import WAIT_MS, open_and_wait
from unprivileged import run_without_root

from pneumoviewer.io import atomic
from pneumoviewer.io.rle import decode
from pneumoviewer.review.autosave import SessionSaveError
from pneumoviewer.review.case import Case, ReviewStatus
from pneumoviewer.review.export import ExportError, export_csv, export_pngs
from pneumoviewer.review.session import ReviewSession

make_window = ui_driver.make_window  # fixtures
study_folder = ui_driver.study_folder
open_folder = unprivileged.open_folder
SHAPE = (64, 48)


def reviewed_cases() -> list[Case]:
    cases = [Case(f"1.2.3.{n}", f"Case {n:04d}", SHAPE) for n in (1, 2)]
    cases[0].editor.begin_stroke()
    cases[0].editor.paint([10, 30], [10, 20], 4)
    cases[0].editor.end_stroke()
    cases[1].set_status(ReviewStatus.REJECTED)
    return cases


def disk_full_at_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


class _FillsUp(io.RawIOBase):
    """A file on a disk with 100 bytes left: they are written, then ENOSPC."""

    def __init__(self, stream: io.BufferedWriter) -> None:
        self._stream, self._room = stream, 100

    def write(self, data: bytes) -> int:
        self._stream.write(bytes(data[: self._room]))
        self._stream.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fileno(self) -> int:
        return self._stream.fileno()

    def close(self) -> None:
        self._stream.close()
        super().close()


def disk_full_during_write(monkeypatch: pytest.MonkeyPatch) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode="r", *args, **kwargs: _FillsUp(real_fdopen(fd, mode)))


def write_csv(folder: Path) -> Path:
    export_csv(reviewed_cases(), folder / "annotations.csv")
    return folder / "annotations.csv"


def write_pngs(folder: Path) -> Path:
    export_pngs(reviewed_cases(), folder / "masks")
    return folder / "masks" / "1.2.3.1.png"


def write_autosave(folder: Path) -> Path:
    session = ReviewSession(folder / "study", [Case("1.2.3.1", "Case 0001", SHAPE)], data_dir=folder / "data")
    failures: list[SessionSaveError] = []
    session.save_failed.connect(failures.append)
    session.cases[0].editor.begin_stroke()
    session.cases[0].editor.paint([20, 40], [5, 30], 3)
    session.cases[0].editor.end_stroke()
    session.set_status("1.2.3.1", ReviewStatus.ACCEPTED)
    if failures:
        raise failures[0]
    return session.store.mask_path("1.2.3.1")


WRITERS: dict[str, tuple[Callable[[Path], Path], type[OSError]]] = {
    "annotation CSV": (write_csv, ExportError),
    "PNG masks": (write_pngs, ExportError),
    "session autosave": (write_autosave, SessionSaveError),
}


def old_files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def plant_old_file(writer: Callable[[Path], Path], folder: Path) -> Path:
    """Write once normally, then replace the result's content with recognisable old content."""
    target = writer(folder)
    target.write_bytes(b"the previous file\n")
    return target


@pytest.mark.parametrize("fill_up", [disk_full_during_write, disk_full_at_fsync], ids=["at write", "at fsync"])
@pytest.mark.parametrize("name", list(WRITERS))
def test_a_full_disk_leaves_the_old_file_whole_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, fill_up: Callable[[pytest.MonkeyPatch], None]
) -> None:
    writer, error_type = WRITERS[name]
    plant_old_file(writer, tmp_path)
    before = old_files(tmp_path)
    fill_up(monkeypatch)
    with pytest.raises(error_type) as caught:
        writer(tmp_path)
    monkeypatch.undo()
    assert caught.value.path.is_relative_to(tmp_path) and str(caught.value.path) in str(caught.value)
    assert "disk is full" in caught.value.reason
    assert old_files(tmp_path) == before  # the old file, and no temporary file left behind


def _read_only_outcome(name: str, folder: Path) -> str:
    try:
        WRITERS[name][0](folder)
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    return "written"


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_read_only_folder_leaves_the_old_file_whole_and_says_so(open_folder: Path, name: str) -> None:
    writer, error_type = WRITERS[name]
    plant_old_file(writer, open_folder)
    before = old_files(open_folder)
    for path in [open_folder, *open_folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o555)
    outcome = run_without_root(lambda: _read_only_outcome(name, open_folder))
    assert outcome.startswith(f"{error_type.__name__}: {open_folder}/")
    assert "read-only or not writable" in outcome
    assert old_files(open_folder) == before


def test_in_the_app_a_failed_export_or_autosave_is_a_message_naming_the_file(
    qtbot, make_window, study_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    window.controller.set_status(ReviewStatus.REJECTED)
    target = tmp_path / "annotations.csv"
    target.write_text("ImageId,EncodedPixels\nprevious,-1\n")
    disk_full_at_fsync(monkeypatch)

    window.controller.export_csv(target)
    qtbot.waitUntil(lambda: "did not work" in window.status.currentMessage(), timeout=WAIT_MS)
    message = window.status.currentMessage()
    assert str(target) in message and "the disk is full" in message
    assert target.read_text() == "ImageId,EncodedPixels\nprevious,-1\n"

    case = window.controller.session.case(window.controller.current_id)
    case.editor.begin_stroke()
    case.editor.paint([300, 340], [300, 320], 8)
    case.editor.end_stroke()
    message = window.status.currentMessage()
    assert message.startswith("Autosave failed: ") and "the disk is full" in message
    assert str(window.controller.session.store.directory) in message
    monkeypatch.undo()
    assert "Traceback" not in "".join(capfd.readouterr())


# -- SIGKILL in the middle of work -----------------------------------------------------------------------

# A real app process edits case after case (strokes, erasing, undo, statuses) without pause and prints
# the state after each completed step; it is killed at an arbitrary point of that work.
_WORKING_APP = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from PySide6.QtCore import QTimer
    from pneumoviewer.io.rle import encode
    from pneumoviewer.model.inference import Predictor
    from pneumoviewer.review.case import ReviewStatus
    from pneumoviewer.ui.app import application
    from pneumoviewer.ui.main_window import MainWindow
    checkpoint, folder, data = (Path(arg) for arg in sys.argv[1:4])
    app = application()
    window = MainWindow(lambda: Predictor.cached(checkpoint), data)
    window.setProperty("quiet", True)
    window.show()
    step = 0

    def stroke(case, value):
        row, col = 100 + 37 * step % 800, 100 + 53 * step % 800
        case.editor.begin_stroke()
        case.editor.paint([row, row + 40], [col, col + 25], 9, value)
        case.editor.end_stroke()

    def work():
        global step
        cases = window.controller.session.cases
        case = cases[step % len(cases)]
        window.controller.show_case(case.image_id)
        kind = step % 5
        if kind in (0, 1):
            stroke(case, True)
        elif kind == 2:
            stroke(case, False)
        elif kind == 3 and case.editor.can_undo:
            case.editor.undo()
        else:
            window.controller.set_status([ReviewStatus.REJECTED, ReviewStatus.ACCEPTED][step // 5 % 2])
        state = {c.image_id: [c.status.value, encode(c.mask) if c.mask is not None else "-1"] for c in cases}
        print("DONE", step, case.image_id, json.dumps(state), flush=True)
        step += 1
        QTimer.singleShot(0, work)

    window.controller.sigSessionOpened.connect(lambda: QTimer.singleShot(0, work))
    window.controller.open_paths([folder])
    app.exec()
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")
def test_every_completed_stroke_and_status_survives_a_sigkill_mid_work(
    qtbot, make_window, study_folder: Path, random_checkpoint: Path, tmp_path: Path
) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "xdg"))
    process = subprocess.Popen(
        [sys.executable, "-c", _WORKING_APP, str(random_checkpoint), str(study_folder), str(tmp_path / "sessions")],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    lines: list[str] = []
    try:
        while len(lines) < 23:  # several rounds over the cases; the 24th step is under way
            line = process.stdout.readline()
            assert line.startswith("DONE"), f"the app stopped: {line!r}"
            lines.append(line)
        process.send_signal(signal.SIGKILL)
        lines += [line for line in process.stdout.read().splitlines() if line.startswith("DONE")]
    finally:
        process.kill()
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    _, last_step, _, state = lines[-1].split(" ", 3)
    last_state = json.loads(state)
    # The step after the last one reported was under way at the kill: its case may be saved before or after it.
    next_case = list(last_state)[(int(last_step) + 1) % len(last_state)]

    window = make_window()
    open_and_wait(qtbot, window, study_folder)
    assert window.controller.session.restore_problems == []
    restored = 0
    for image_id, (status, rle) in last_state.items():
        case = window.controller.session.case(image_id)
        if image_id == next_case:
            continue
        assert case.status.value == status, image_id
        saved = case.mask if case.mask is not None else np.zeros(case.shape, dtype=bool)
        np.testing.assert_array_equal(saved, decode(rle, case.shape), err_msg=image_id)
        restored += int(rle != "-1") + int(status != "unreviewed")
    assert restored >= 4
    print(f"\nSIGKILL after {len(lines)} completed steps: every stroke and status of the other cases restored")
