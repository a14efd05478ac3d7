"""Progress in logs: a line per tenth (or every LOG_INTERVAL_SECONDS) when stderr is not a terminal, tqdm when it is."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from pneumoviewer import progress as progress_module
from pneumoviewer.progress import LOG_INTERVAL_SECONDS, LogLines, progress_bar


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_one_line_per_tenth_and_none_in_between() -> None:
    clock, log = FakeClock(), io.StringIO()
    with LogLines(300, "predict", "image", log, clock=clock) as bar:
        for _ in range(300):
            clock.now += 0.01
            bar.update()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split()[1] for line in lines] == [f"{30 * k}/300" for k in range(1, 11)]
    assert lines[0] == "predict: 30/300 images (10%), 0 s, 100.0 images/s, about 3 s left"
    assert lines[-1] == "predict: 300/300 images (100%), 3 s, 100.0 images/s"


def test_a_slow_run_also_prints_a_line_every_interval_while_items_get_done() -> None:
    clock, log = FakeClock(), io.StringIO()
    bar = LogLines(1000, "evaluate", "image", log, clock=clock)
    for _ in range(12):  # 4 s an item: a tenth would take 400 s
        clock.now += 4.0
        bar.update()
    clock.now += 10 * LOG_INTERVAL_SECONDS  # stuck on one file: no line while nothing gets done
    bar.update(0)
    bar.close()
    done = [int(line.split()[1].split("/")[0]) for line in log.getvalue().splitlines()]
    assert done == [3, 6, 9, 12]  # every 12 s (>= 10 s), and close() adds nothing new
    bar.write("pneumoviewer: x.dcm: not a DICOM file")
    assert log.getvalue().endswith("pneumoviewer: x.dcm: not a DICOM file\n")


def test_a_resumed_run_counts_from_where_it_was_and_shows_its_figures() -> None:
    """Training's bar: an epoch resumed at step 40 of 100, a running loss after the count, a line a minute."""
    clock, log = FakeClock(), io.StringIO()
    bar = LogLines(100, "epoch 3/8", "batch", log, clock=clock, initial=40, interval_seconds=60.0)
    for step in range(8):  # 10 s a step: a tenth (50) not reached, a line when a minute has passed
        clock.now += 10.0
        bar.set_postfix(loss=f"{0.7 - step / 100:.3f}")
        bar.update()
    bar.close()
    assert log.getvalue().splitlines() == [  # the rate is this run's: 6 batches in 60 s, not 46
        "epoch 3/8: 46/100 batches (46%), 60 s, 0.1 batches/s, about 540 s left, loss=0.650",
        "epoch 3/8: 48/100 batches (48%), 80 s, 0.1 batches/s, about 520 s left, loss=0.630",
    ]


def test_nothing_to_do_still_ends_with_a_line() -> None:
    log = io.StringIO()
    with progress_bar(0, "CSV", stream=log):
        pass
    assert log.getvalue() == "CSV: 0/0 images, 0 s\n"


def test_a_terminal_gets_tqdm_redrawing_in_place() -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    with os.fdopen(follower, "w") as terminal:
        bar = progress_bar(5, "predict", stream=terminal)
        assert not isinstance(bar, LogLines)
        for _ in range(5):
            bar.update()
        bar.close()
    written = ""
    while chunk := _read_or_nothing(leader):
        written += chunk
    os.close(leader)
    assert "\r" in written and "5/5" in written


def _read_or_nothing(fd: int) -> str:
    try:
        return os.read(fd, 4096).decode()
    except OSError:  # Linux ends a pty whose other side is closed with EIO
        return ""


@pytest.mark.slow
def test_predict_into_a_pipe_writes_progress_lines_not_carriage_returns(
    tmp_path: Path, siim_dir: Path, random_checkpoint: Path
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for path in sorted((siim_dir / "dicom-images").rglob("*.dcm"))[:30]:
        (folder / path.name).symlink_to(path)
    environment = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))  # never the user's ONNX cache
    done = subprocess.run(
        [sys.executable, "-m", "pneumoviewer", "predict", str(folder), "--model", str(random_checkpoint),
         "--out", str(tmp_path / "preds.csv")],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("predict: ")]
    assert [line.split()[1] for line in progress] == [f"{3 * k}/30" for k in range(1, 11)], done.stderr


def test_the_helper_stays_light() -> None:
    """export uses it without the AI: importing it loads neither tqdm nor the model's runtime."""
    code = f"import sys, {progress_module.__name__}; print(sorted({{'torch', 'tqdm'}} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
